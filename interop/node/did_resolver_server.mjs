// A minimal Universal Resolver over npm `did-resolver` + `key-did-resolver`, the Node
// baseline for EDK's DID server benchmark (benches/peers/did_resolver_node.sh).
//
//   GET /1.0/identifiers/<did>  -> 200 application/did-resolution: the resolution result
//                                  (404 / 400 with the result when resolution fails)
//
// Listens on 127.0.0.1 (port from PORT, else any free one) and prints {"url": "..."} once
// listening.
import http from 'node:http';
import { Resolver } from 'did-resolver';
import * as KeyDidResolver from 'key-did-resolver';

const resolver = new Resolver({ ...KeyDidResolver.getResolver() });
const prefix = '/1.0/identifiers/';

const server = http.createServer(async (req, res) => {
  const path = (req.url ?? '').split('?')[0];
  if (req.method !== 'GET' || !path.startsWith(prefix)) {
    res.writeHead(404).end();
    return;
  }
  const did = decodeURIComponent(path.slice(prefix.length));
  const result = await resolver.resolve(did);
  const error = result.didResolutionMetadata?.error;
  const status = !error ? 200 : error === 'notFound' ? 404 : error === 'unsupportedDidMethod' ? 501 : 400;
  res.writeHead(status, { 'content-type': 'application/did-resolution' });
  res.end(JSON.stringify(result));
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address();
  console.log(JSON.stringify({ url: `http://127.0.0.1:${port}` }));
});
