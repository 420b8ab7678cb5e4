// mso_mdoc peer for EDK's interop tests, on npm `@animo-id/mdoc` with node:crypto as its
// crypto, COSE and X.509 context.
//
// Reads one JSON request from stdin and prints one JSON answer. Byte strings are hex.
//   {"action": "verify_issuer_signed", "issuer_signed": "<base64url>", "doc_type": "...",
//    "trusted": ["<der>"], "now": "<RFC 3339>"}
//       -> {"failed": [<failed checks>], "claims": {ns: {element: value}}}
//   {"action": "verify_device_response", "device_response": "<cbor>",
//    "session_transcript_bytes": "<tag 24 cbor>", "trusted": ["<der>"], "now": "<RFC 3339>"}
//       -> {"failed": [...], "documents": [{"doc_type": "...", "claims": {...}}]}
//   {"action": "present", "issuer_signed": "<base64url>", "doc_type": "...",
//    "device_jwk": {private JWK}, "disclose": [[ns, element]], "session_transcript_bytes": "<hex>"}
//       -> {"device_response": "<cbor>"}
//   {"action": "issue_and_present", "issuer_jwk": {private JWK}, "issuer_certificate": "<der>",
//    "device_jwk": {private JWK}, "doc_type": "...", "namespace": "...", "claims": {...},
//    "dates": [element names given as full-date], "signed"/"valid_from"/"valid_until": "<RFC 3339>",
//    "disclose": [[ns, element]], "session_transcript_bytes": "<hex>"}
//       -> {"device_response": "<cbor>"}
import crypto from 'node:crypto';

import {
  DateOnly,
  DeviceResponse,
  Document,
  MDoc,
  Verifier,
  parseIssuerSigned,
} from '@animo-id/mdoc';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const hex = (text) => new Uint8Array(Buffer.from(text, 'hex'));
const toHex = (bytes) => Buffer.from(bytes).toString('hex');
const HASHES = { ES256: 'sha256', ES384: 'sha384', ES512: 'sha512', EdDSA: null };

const context = {
  crypto: {
    random: (length) => new Uint8Array(crypto.randomBytes(length)),
    digest: ({ digestAlgorithm, bytes }) =>
      new Uint8Array(crypto.createHash(digestAlgorithm.replace('-', '').toLowerCase()).update(bytes).digest()),
    calculateEphemeralMacKeyJwk: () => {
      throw new Error('device MAC is not used by these tests');
    },
  },
  cose: {
    sign1: {
      sign: ({ sign1, jwk }) => {
        const { data, alg } = sign1.getRawSigningData();
        const key = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
        return new Uint8Array(crypto.sign(HASHES[alg], data, { key, dsaEncoding: 'ieee-p1363' }));
      },
      verify: ({ sign1, jwk }) => {
        const { alg, signature, data } = sign1.getRawVerificationData();
        const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
        return crypto.verify(HASHES[alg], data, { key, dsaEncoding: 'ieee-p1363' }, signature);
      },
    },
    mac0: {
      sign: () => {
        throw new Error('device MAC is not used by these tests');
      },
      verify: () => {
        throw new Error('device MAC is not used by these tests');
      },
    },
  },
  x509: {
    getIssuerNameField: ({ certificate, field }) =>
      new crypto.X509Certificate(certificate).issuer
        .split('\n')
        .filter((line) => line.startsWith(`${field}=`))
        .map((line) => line.slice(field.length + 1)),
    getPublicKey: ({ certificate }) =>
      new crypto.X509Certificate(certificate).publicKey.export({ format: 'jwk' }),
    validateCertificateChain: ({ trustedCertificates, x5chain }) => {
      const chain = x5chain.map((der) => new crypto.X509Certificate(der));
      const anchors = trustedCertificates.map((der) => new crypto.X509Certificate(der));
      const now = new Date(request.now);
      for (const cert of [...chain, ...anchors]) {
        if (now < new Date(cert.validFrom) || now > new Date(cert.validTo)) {
          throw new Error(`certificate ${cert.subject} is not valid at ${request.now}`);
        }
      }
      for (let i = 0; i + 1 < chain.length; i += 1) {
        if (!chain[i].checkIssued(chain[i + 1]) || !chain[i].verify(chain[i + 1].publicKey)) {
          throw new Error('the x5chain is not a chain');
        }
      }
      const last = chain[chain.length - 1];
      const anchored = anchors.some(
        (anchor) => anchor.raw.equals(last.raw) || (last.checkIssued(anchor) && last.verify(anchor.publicKey)),
      );
      if (!anchored) throw new Error('the x5chain does not end at a trusted certificate');
    },
    getCertificateData: ({ certificate }) => {
      const cert = new crypto.X509Certificate(certificate);
      return {
        issuerName: cert.issuer,
        subjectName: cert.subject,
        serialNumber: cert.serialNumber,
        thumbprint: cert.fingerprint256,
        notBefore: new Date(cert.validFrom),
        notAfter: new Date(cert.validTo),
        pem: cert.toString(),
      };
    },
  },
};

/** A CBOR-decoded element value as JSON. */
function plain(value) {
  if (value instanceof DateOnly) return value.toISOString();
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return toHex(value);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), plain(v)]));
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'bigint') return Number(value);
  return value;
}

function claimsOf(document) {
  const claims = {};
  for (const namespace of document.issuerSignedNameSpaces) {
    claims[namespace] = plain(document.getIssuerNameSpace(namespace));
  }
  return claims;
}

function collector() {
  const failed = [];
  const onCheck = (check) => {
    if (check.status === 'FAILED') failed.push(check.reason ?? check.check);
  };
  return { failed, onCheck };
}

function presentationDefinition(docType, disclose) {
  return {
    id: 'edk-interop',
    input_descriptors: [
      {
        id: docType,
        format: { mso_mdoc: { alg: ['ES256', 'ES384', 'EdDSA'] } },
        constraints: {
          limit_disclosure: 'required',
          fields: disclose.map(([namespace, element]) => ({
            path: [`$['${namespace}']['${element}']`],
            intent_to_retain: false,
          })),
        },
      },
    ],
  };
}

async function present(mdoc, docType) {
  const response = await DeviceResponse.from(mdoc)
    .usingPresentationDefinition(presentationDefinition(docType, request.disclose))
    .usingSessionTranscriptBytes(hex(request.session_transcript_bytes))
    .authenticateWithSignature(request.device_jwk, request.device_jwk.crv === 'Ed25519' ? 'EdDSA' : 'ES256')
    .sign(context);
  return { device_response: toHex(response.encode()) };
}

async function answer() {
  const verifier = new Verifier();
  const trusted = (request.trusted ?? []).map(hex);
  switch (request.action) {
    case 'verify_issuer_signed': {
      const bytes = new Uint8Array(Buffer.from(request.issuer_signed, 'base64url'));
      const document = parseIssuerSigned(bytes, request.doc_type);
      const { failed, onCheck } = collector();
      await verifier.verifyIssuerSignature(
        {
          issuerAuth: document.issuerSigned.issuerAuth,
          trustedCertificates: trusted,
          disableCertificateChainValidation: false,
          now: new Date(request.now),
          onCheckG: onCheck,
        },
        context,
      );
      await verifier.verifyData({ mdoc: document, onCheckG: onCheck }, context);
      return { failed, claims: claimsOf(document) };
    }
    case 'verify_device_response': {
      const { failed, onCheck } = collector();
      const mdoc = await verifier.verifyDeviceResponse(
        {
          encodedDeviceResponse: hex(request.device_response),
          encodedSessionTranscript: hex(request.session_transcript_bytes),
          trustedCertificates: trusted,
          now: new Date(request.now),
          onCheck,
        },
        context,
      );
      const documents = mdoc.documents.map((document) => ({
        doc_type: document.docType,
        claims: claimsOf(document),
      }));
      return { failed, documents };
    }
    case 'present': {
      const bytes = new Uint8Array(Buffer.from(request.issuer_signed, 'base64url'));
      const document = parseIssuerSigned(bytes, request.doc_type);
      return present(new MDoc([document]), request.doc_type);
    }
    case 'issue_and_present': {
      const claims = { ...request.claims };
      for (const element of request.dates ?? []) claims[element] = new DateOnly(claims[element]);
      const document = await new Document(request.doc_type, context)
        .addIssuerNameSpace(request.namespace, claims)
        .useDigestAlgorithm('SHA-256')
        .addValidityInfo({
          signed: new Date(request.signed),
          validFrom: new Date(request.valid_from),
          validUntil: new Date(request.valid_until),
        })
        .addDeviceKeyInfo({ deviceKey: publicJwk(request.device_jwk) })
        .sign(
          {
            issuerPrivateKey: request.issuer_jwk,
            issuerCertificate: hex(request.issuer_certificate),
            alg: 'ES256',
          },
          context,
        );
      return present(new MDoc([document]), request.doc_type);
    }
    default:
      throw new Error(`unknown action ${request.action}`);
  }
}

function publicJwk(jwk) {
  const { d: _d, ...rest } = jwk;
  return rest;
}

process.stdout.write(JSON.stringify(await answer()));
