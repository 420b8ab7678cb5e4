// DCQL peer for EDK's interop tests, on npm `dcql`.
//
// Reads one JSON request from stdin and prints one JSON answer:
//   {"cases": [{"query": {DCQL}, "credentials": [credential], "presentation": {id: [credential]}}]}
//     -> [{"valid": bool, "error": "<message when the query is refused>",
//          "can_be_satisfied": bool, "matches": {id: [credential index]},
//          "claim_sets": {id: [first satisfied claim_sets index per match, or null]},
//          "presentation_accepted": bool}]
// Credentials are in the package's shape: {"credential_format", "vct" | "doctype" | "type",
// "claims" | "namespaces", "cryptographic_holder_binding", "authority"?}.
// "credentials" and "presentation" are optional; a refused query has only "valid" and "error".
import { DcqlPresentationResult, DcqlQuery } from 'dcql';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const answers = request.cases.map((testCase) => {
  let query;
  try {
    query = DcqlQuery.parse(testCase.query);
    DcqlQuery.validate(query);
  } catch (error) {
    return { valid: false, error: String(error.message ?? error) };
  }
  const answer = { valid: true };
  if (testCase.credentials) {
    const result = DcqlQuery.query(query, testCase.credentials);
    answer.can_be_satisfied = result.can_be_satisfied;
    answer.matches = {};
    answer.claim_sets = {};
    for (const [id, match] of Object.entries(result.credential_matches)) {
      const valid = match.success ? match.valid_credentials : [];
      answer.matches[id] = valid.map((credential) => credential.input_credential_index);
      answer.claim_sets[id] = valid.map((credential) => {
        const sets = credential.claims?.valid_claim_sets ?? [];
        const indexes = sets.map((set) => set.claim_set_index).filter((index) => index !== undefined);
        return indexes.length > 0 ? Math.min(...indexes) : null;
      });
    }
  }
  if (testCase.presentation) {
    try {
      const result = DcqlPresentationResult.fromDcqlPresentation(testCase.presentation, {
        dcqlQuery: query,
      });
      DcqlPresentationResult.validate(result);
      answer.presentation_accepted = result.can_be_satisfied;
    } catch (error) {
      answer.presentation_accepted = false;
      answer.presentation_error = String(error.message ?? error);
    }
  }
  return answer;
});

process.stdout.write(JSON.stringify(answers));
