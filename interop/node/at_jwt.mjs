// Verifies a JWT access token (RFC 9068) with npm `jose`, as a resource server would, for
// EDK's interop tests.
//
// Reads one JSON request from stdin:
//   {"token": "<compact JWT>", "jwks_uri": "http://…/jwks.json", "issuer": "…",
//    "audience": "…", "current_date"?: <unix seconds>}
// fetches the JWKS from `jwks_uri` over HTTP (jose's remote key set) and verifies the
// signature, `typ: at+jwt`, `iss`, `aud`, `exp` (at `current_date` when given, else now) and
// the presence of the claims RFC 9068 §2.2 requires. Prints
//   {"verified": true, "header": {…}, "payload": {…}}       when the token verifies,
//   {"verified": false, "code": "ERR_…", "claim"?: "…"}    with jose's error code (and the
//                                                          failed claim) when it does not.
// Anything else (a bad request, the JWKS unreachable) exits non-zero.
import * as jose from 'jose';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const keys = jose.createRemoteJWKSet(new URL(request.jwks_uri));
const options = {
  issuer: request.issuer,
  audience: request.audience,
  typ: 'at+jwt',
  requiredClaims: ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti'],
};
if (request.current_date !== undefined) {
  options.currentDate = new Date(request.current_date * 1000);
}

let answer;
try {
  const { payload, protectedHeader } = await jose.jwtVerify(request.token, keys, options);
  answer = { verified: true, header: protectedHeader, payload };
} catch (err) {
  if (!(err instanceof jose.errors.JOSEError) || err.code === 'ERR_JWKS_TIMEOUT') throw err;
  answer = { verified: false, code: err.code };
  if (err.claim !== undefined) answer.claim = err.claim;
}
process.stdout.write(JSON.stringify(answer));
