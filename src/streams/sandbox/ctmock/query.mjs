// `sort` over HTTP. The mock's storage sorts (lib/sortParser), but its services build the
// query parameters without `sort`. Each GET handler is wrapped (onRoute) to hand the request's
// sort to the repository's query(). The hand-over is a module variable set right before the
// original handler runs and read by query(): the handlers call query() synchronously before
// their first await, so no other request can run in between.
import qs from "qs";

let handedSort;
// The mock parses query strings with qs' default arrayLimit (20): a variable given more
// often (`var.skus` for `sku in :skus` with 100 SKUs) stops being a list and matches nothing.
// commercetools takes such lists, so GET handlers see the query parsed without that limit.
const QS = { arrayLimit: 10_000, parameterLimit: 10_000 };

function reparse(request) {
  const url = request.raw?.url ?? "";
  const at = url.indexOf("?");
  if (at >= 0) request.query = qs.parse(url.slice(at + 1), QS);
}

export function installSort(app, repos) {
  app.addHook("onRoute", (route) => {
    const methods = [route.method].flat();
    if (!methods.includes("GET")) return;
    const handler = route.handler;
    route.handler = function sortAware(request, reply) {
      reparse(request);
      const sort = request.query?.sort;
      if (sort === undefined) return handler.call(this, request, reply);
      handedSort = [sort].flat().map(String);
      try {
        return handler.call(this, request, reply);
      } finally {
        handedSort = undefined;
      }
    };
  });
  for (const repo of Object.values(repos)) {
    if (typeof repo?.query !== "function") continue;
    const query = repo.query.bind(repo);
    repo.query = (context, params = {}) => {
      const sort = handedSort;
      handedSort = undefined; // only the handler's own first query gets it
      if (sort === undefined || params.sort !== undefined) return query(context, params);
      return query(context, { ...params, sort });
    };
  }
}
