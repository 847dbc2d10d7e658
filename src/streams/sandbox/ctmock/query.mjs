// `sort` over HTTP. The mock's storage sorts (lib/sortParser), but its services build the
// query parameters without `sort`. Each GET handler is wrapped (onRoute) to hand the request's
// sort to the repository's query(). The hand-over is a module variable set right before the
// original handler runs and read by query(): the handlers call query() synchronously before
// their first await, so no other request can run in between.
let handedSort;

export function installSort(app, repos) {
  app.addHook("onRoute", (route) => {
    const methods = [route.method].flat();
    if (!methods.includes("GET")) return;
    const handler = route.handler;
    route.handler = function sortAware(request, reply) {
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
