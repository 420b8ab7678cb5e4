// Reads a Status List Token as a relying party does with npm `@sd-jwt/jwt-status-list` and
// `jose`: input {token, jwk, uri, indices}; verifies the JWS with the issuer's key, checks
// `typ` and `sub`, and answers {statuses: [...]} with the status at each index.
import { getListFromStatusListJWT } from "@sd-jwt/jwt-status-list";
import { compactVerify, decodeProtectedHeader, importJWK } from "jose";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));

try {
  const header = decodeProtectedHeader(input.token);
  if (header.typ !== "statuslist+jwt") throw new Error(`typ is ${header.typ}`);
  const key = await importJWK(input.jwk, header.alg);
  const { payload } = await compactVerify(input.token, key);
  const claims = JSON.parse(new TextDecoder().decode(payload));
  if (claims.sub !== input.uri) throw new Error(`sub is ${claims.sub}`);
  if (typeof claims.exp === "number" && claims.exp * 1000 < Date.now()) throw new Error("expired");
  const list = getListFromStatusListJWT(input.token);
  const statuses = input.indices.map((index) => list.getStatus(index));
  process.stdout.write(JSON.stringify({ statuses, bits: list.getBitsPerStatus() }));
} catch (err) {
  process.stdout.write(JSON.stringify({ error: String(err?.message ?? err) }));
  process.exitCode = 1;
}
