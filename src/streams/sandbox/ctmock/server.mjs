// Serves @labdigital/commercetools-mock over HTTP on 127.0.0.1:$CT_MOCK_PORT (default 8989),
// extended to behave like commercetools for storefront orders: inventory effects of orders,
// Messages, subscription delivery to Kafka, sort over HTTP (see docs/commercetools-emulator.md).
// Started and stopped by streams.sandbox.ctmock.
import { CommercetoolsMock } from "@labdigital/commercetools-mock";
import { installChanges } from "./changes.mjs";
import { Delivery } from "./delivery.mjs";
import { Bus, errorClass, internals, intEnv, setErrorClass } from "./hooks.mjs";
import { patchInventory } from "./inventory.mjs";
import { MessageLog } from "./messages.mjs";
import { patchOrders } from "./orders.mjs";
import { installSort } from "./query.mjs";

const port = Number.parseInt(process.env.CT_MOCK_PORT ?? "8989", 10);
const projectKey = process.env.CT_MOCK_PROJECT_KEY ?? "test-project";
const stockDelayMs = intEnv("CT_MOCK_ORDER_STOCK_DELAY_MS", 0);
const dropEvery = intEnv("CT_MOCK_DELIVERY_DROP_EVERY", 0);

const mock = new CommercetoolsMock({
  enableAuthentication: true, // require a Bearer token on /{projectKey}/...
  validateCredentials: true, // the token must have been issued by this mock
  strict: true, // validate drafts against the package's schemas
  silent: true,
  defaultProjectKey: projectKey,
});

const parts = internals(mock);
setErrorClass(await errorClass(parts.repos));
const bus = new Bus();
const log = new MessageLog(parts, bus);
patchInventory(parts, log);
patchOrders(parts, log, bus, stockDelayMs);
const delivery = new Delivery(parts, bus, dropEvery);
installChanges(parts.repos, bus); // last: wraps the patched methods
installSort(mock.app, parts.repos);
log.register(mock.app);

// a delivery or timer fault must not take the emulator down
process.on("unhandledRejection", (err) => console.error("unhandled rejection:", err));

// mock.runServer(port) hard-codes host 0.0.0.0; bind loopback unless told (CT_MOCK_HOST, e.g.
// inside a container), via the Fastify app.
const host = process.env.CT_MOCK_HOST ?? "127.0.0.1";
await mock.app.listen({ port, host });
console.log(
  `commercetools-mock listening on http://${host}:${port} ` +
    `(order stock delay ${stockDelayMs} ms, drop every ${dropEvery || "-"} delivery)`,
);

const stop = async () => {
  await mock.app.close();
  await delivery.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
