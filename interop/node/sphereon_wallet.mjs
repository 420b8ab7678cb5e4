// A wallet built on npm @sphereon/oid4vci-client 0.20 (OpenID4VCI draft 15 era) that walks the
// pre-authorized code flow from a credential offer: offer → metadata → token with the
// transaction code → credential with a JWT key proof (the singular `proof` object).
//
// Input (stdin, JSON): { "offer": "openid-credential-offer://…", "tx_code": "123456",
//                        "configuration": "identity", "format": "dc+sd-jwt" }
// Output (stdout, JSON): { "token": {…}, "credential": {…}, "holder_jwk": jwk }
// Errors are printed as JSON { "error": "…" } with exit code 1.
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { OpenID4VCIClient } from '@sphereon/oid4vci-client';

const input = JSON.parse(await new Response(process.stdin).text());

try {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const client = await OpenID4VCIClient.fromURI({
    uri: input.offer,
    alg: 'ES256',
    retrieveServerMetadata: true,
    resolveOfferUri: true,
  });
  const token = await client.acquireAccessToken({ pin: input.tx_code });
  const signCallback = async ({ header, payload }) =>
    new SignJWT(payload).setProtectedHeader({ ...header, alg: 'ES256', jwk }).sign(privateKey);
  const credential = await client.acquireCredentials({
    credentialTypes: input.configuration,
    format: input.format,
    proofCallbacks: { signCallback },
    alg: 'ES256',
    jwk,
  });
  process.stdout.write(JSON.stringify({ token, credential, holder_jwk: jwk }));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: `${error.name}: ${error.message}` }));
  process.exitCode = 1;
}
