// JWS peer for EDK's interop tests, on npm `jose`.
//
// Reads one JSON request from stdin and prints one JSON answer:
//   {"verify": "<compact JWS>", "jwk": {...}}  -> {"payload": "<utf-8>", "protectedHeader": {...}}
//   {"sign": "<utf-8 payload>", "alg": "ES256", "typ": "JWT"}
//                                               -> {"token": "<compact JWS>", "jwk": {public JWK}}
//   {"thumbprint": {...jwk}}                    -> {"thumbprint": "<RFC 7638 SHA-256, base64url>"}
// Verification is restricted to the JWK's (or the header's) algorithm; failures exit non-zero.
import * as jose from 'jose';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));

async function answer() {
  if (request.verify !== undefined) {
    const alg = request.jwk.alg ?? jose.decodeProtectedHeader(request.verify).alg;
    const key = await jose.importJWK(request.jwk, alg);
    const { payload, protectedHeader } = await jose.compactVerify(request.verify, key, {
      algorithms: [alg],
    });
    return { payload: new TextDecoder().decode(payload), protectedHeader };
  }
  if (request.sign !== undefined) {
    const { alg } = request;
    const options = alg.startsWith('RS') || alg.startsWith('PS')
      ? { extractable: true, modulusLength: 2048 }
      : { extractable: true };
    const { privateKey, publicKey } = await jose.generateKeyPair(alg, options);
    const header = { alg };
    if (request.typ !== undefined) header.typ = request.typ;
    const token = await new jose.CompactSign(new TextEncoder().encode(request.sign))
      .setProtectedHeader(header)
      .sign(privateKey);
    return { token, jwk: await jose.exportJWK(publicKey) };
  }
  if (request.thumbprint !== undefined) {
    return { thumbprint: await jose.calculateJwkThumbprint(request.thumbprint, 'sha256') };
  }
  throw new Error('expected one of "verify", "sign" or "thumbprint"');
}

process.stdout.write(JSON.stringify(await answer()));
