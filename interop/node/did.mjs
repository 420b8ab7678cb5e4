// DID peer for EDK's interop tests: did:key through npm `did-resolver` + `key-did-resolver`,
// did:key creation with `@noble/curves` + `multiformats` + `varint`, did:jwk created and
// resolved by `@digitalbazaar/did-method-jwk` with JWS from `jose`.
//
// Reads one JSON request from stdin and prints one JSON answer:
//   {"resolveKey": ["did:key:…", …]}   -> [{"did", "jwk", "keyAgreementX25519Hex"?}, …]
//       each DID resolved by did-resolver + key-did-resolver; the first verification method
//       turned into a public JWK (publicKeyBase58 keys decompressed with @noble/curves)
//   {"createKey": ["Ed25519", "secp256k1", "P-256", "P-384"]}
//                                      -> [{"did", "jwk"}, …] for fresh keys
//   {"verifyJwk": "<compact JWS>"}     -> {"payload", "document"} after resolving the
//       header's `kid` (did:jwk:…#0) with @digitalbazaar/did-method-jwk, which must list it
//       as an assertion method, and verifying with jose under the resolved key; `document`
//       is the DID document the library resolved
//   {"signJwk": "<utf-8 payload>", "alg": "ES256"}
//                                      -> {"did", "token"}: a fresh key's did:jwk made by
//       @digitalbazaar/did-method-jwk and a JWS whose kid is its verification method
// Failures exit non-zero.
import * as DidJwk from '@digitalbazaar/did-method-jwk';
import * as jose from 'jose';
import { Resolver } from 'did-resolver';
import * as KeyDidResolver from 'key-did-resolver';
import { base58btc } from 'multiformats/bases/base58';
import varint from 'varint';
import { ed25519 } from '@noble/curves/ed25519';
import { secp256k1 } from '@noble/curves/secp256k1';
import { p256, p384 } from '@noble/curves/nist';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');
const hex = (bytes) => Buffer.from(bytes).toString('hex');
const curves = {
  'P-256': { curve: p256, codec: 0x1200, len: 32 },
  'P-384': { curve: p384, codec: 0x1201, len: 48 },
  secp256k1: { curve: secp256k1, codec: 0xe7, len: 32 },
};

function ecJwk(crv, pointBytes) {
  const { curve, len } = curves[crv];
  const raw = curve.ProjectivePoint.fromHex(hex(pointBytes)).toRawBytes(false);
  return { kty: 'EC', crv, x: b64url(raw.slice(1, 1 + len)), y: b64url(raw.slice(1 + len)) };
}

function methodJwk(method) {
  if (method.publicKeyJwk) return method.publicKeyJwk;
  const raw = base58btc.baseDecode(method.publicKeyBase58);
  switch (method.type) {
    case 'Ed25519VerificationKey2018':
      return { kty: 'OKP', crv: 'Ed25519', x: b64url(raw) };
    case 'Secp256k1VerificationKey2018':
      return ecJwk('secp256k1', raw);
    default:
      throw new Error(`unexpected verification method type ${method.type}`);
  }
}

async function answer() {
  if (request.resolveKey !== undefined) {
    const resolver = new Resolver(KeyDidResolver.getResolver());
    const out = [];
    for (const did of request.resolveKey) {
      const result = await resolver.resolve(did);
      if (!result.didDocument) throw new Error(`${did}: ${JSON.stringify(result.didResolutionMetadata)}`);
      const [method] = result.didDocument.verificationMethod;
      const entry = { did: result.didDocument.id, jwk: methodJwk(method) };
      const agreement = (result.didDocument.keyAgreement ?? [])[0];
      if (agreement?.publicKeyBase58) {
        entry.keyAgreementX25519Hex = hex(base58btc.baseDecode(agreement.publicKeyBase58));
      }
      out.push(entry);
    }
    return out;
  }
  if (request.createKey !== undefined) {
    return request.createKey.map((crv) => {
      let codec;
      let publicKey;
      let jwk;
      if (crv === 'Ed25519') {
        codec = 0xed;
        publicKey = ed25519.getPublicKey(ed25519.utils.randomPrivateKey());
        jwk = { kty: 'OKP', crv, x: b64url(publicKey) };
      } else {
        const { curve } = curves[crv];
        codec = curves[crv].codec;
        publicKey = curve.getPublicKey(curve.utils.randomPrivateKey(), true);
        jwk = ecJwk(crv, publicKey);
      }
      const bytes = Uint8Array.from([...varint.encode(codec), ...publicKey]);
      return { did: `did:key:${base58btc.encode(bytes)}`, jwk };
    });
  }
  if (request.verifyJwk !== undefined) {
    const { kid, alg } = jose.decodeProtectedHeader(request.verifyJwk);
    const driver = DidJwk.driver();
    const method = await driver.get({ url: kid });
    if (method.id !== kid) throw new Error(`resolved ${method.id} for ${kid}`);
    const document = await driver.get({ did: method.controller });
    if (!document.assertionMethod?.includes(kid)) {
      throw new Error(`${kid} is not an assertion method of ${document.id}`);
    }
    const key = await jose.importJWK(method.publicKeyJwk, alg);
    const { payload } = await jose.compactVerify(request.verifyJwk, key, { algorithms: [alg] });
    return { payload: new TextDecoder().decode(payload), document };
  }
  if (request.signJwk !== undefined) {
    const { alg } = request;
    const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
    const { didDocument } = await DidJwk.driver().fromJwk({ jwk: await jose.exportJWK(publicKey) });
    const [method] = didDocument.verificationMethod;
    const token = await new jose.CompactSign(new TextEncoder().encode(request.signJwk))
      .setProtectedHeader({ alg, kid: method.id })
      .sign(privateKey);
    return { did: didDocument.id, token };
  }
  throw new Error('unknown request');
}

process.stdout.write(JSON.stringify(await answer()));
