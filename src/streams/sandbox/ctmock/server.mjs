// Serves @labdigital/commercetools-mock over HTTP on 127.0.0.1:$CT_MOCK_PORT (default 8989).
// Recipe and known gaps: see the commercetools MOCK.md notes (no addQuantity, no messages,
// sort ignored over HTTP, stock clamped at 0). Started and stopped by streams.sandbox.ctmock.
import { CommercetoolsMock } from "@labdigital/commercetools-mock";

const port = Number.parseInt(process.env.CT_MOCK_PORT ?? "8989", 10);
const projectKey = process.env.CT_MOCK_PROJECT_KEY ?? "test-project";

const mock = new CommercetoolsMock({
  enableAuthentication: true, // require a Bearer token on /{projectKey}/...
  validateCredentials: true, // the token must have been issued by this mock
  strict: true, // validate drafts against the package's schemas
  silent: true,
  defaultProjectKey: projectKey,
});

// mock.runServer(port) hard-codes host 0.0.0.0; bind loopback unless told (CT_MOCK_HOST, e.g.
// inside a container), via the Fastify app.
const host = process.env.CT_MOCK_HOST ?? "127.0.0.1";
await mock.app.listen({ port, host });
console.log(`commercetools-mock listening on http://${host}:${port}`);

const stop = async () => {
  await mock.app.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
