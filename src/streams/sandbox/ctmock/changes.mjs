// Change notifications for every resource type the mock stores: each repository's create (and
// the order import), processUpdateActions (when the version moved) and delete are wrapped.
// Installed after the other extensions so it wraps their versions of those methods.
import { emitChange } from "./hooks.mjs";

export function installChanges(repos, bus) {
  for (const repo of Object.values(repos)) {
    const typeId = repo?._typeId;
    if (!typeId) continue; // the project repository
    for (const name of typeId === "order" ? ["create", "import"] : ["create"]) {
      const original = repo[name].bind(repo);
      repo[name] = async (context, ...args) => {
        const created = await original(context, ...args);
        emitChange(bus, context.projectKey, typeId, created, "ResourceCreated");
        return created;
      };
    }
    const update = repo.processUpdateActions.bind(repo);
    repo.processUpdateActions = async (context, resource, version, actions) => {
      const updated = await update(context, resource, version, actions);
      if (updated.version !== resource.version) {
        emitChange(bus, context.projectKey, typeId, updated, "ResourceUpdated", resource.version);
      }
      return updated;
    };
    const remove = repo.delete.bind(repo);
    repo.delete = async (context, ...args) => {
      const deleted = await remove(context, ...args);
      if (deleted) emitChange(bus, context.projectKey, typeId, deleted, "ResourceDeleted");
      return deleted;
    };
  }
}
