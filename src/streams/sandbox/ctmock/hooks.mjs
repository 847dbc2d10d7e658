// Shared plumbing for the emulator's extensions of @labdigital/commercetools-mock 4.4.0.
// The mock's TypeScript-private fields (_repositories, _storage, _oauth2) are ordinary
// properties at run time; the extensions wrap repository methods on those instances, so the
// package itself stays unmodified and pinned.

export function internals(mock) {
  const repos = mock._repositories;
  const storage = mock._storage;
  const oauth = mock._oauth2;
  if (!repos || !storage || !oauth || !repos["inventory-entry"] || !repos.order) {
    throw new Error("commercetools-mock internals changed; the extensions need version 4.4.0");
  }
  return { repos, storage, oauth };
}

// The mock's error handler only renders its own CommercetoolsError class in commercetools'
// error shape, and the package does not export it: provoke one (a save of a missing resource)
// and keep its constructor.
export async function errorClass(repos) {
  try {
    await repos.channel.saveUpdate({ projectKey: "__ctmock_probe__" }, 1, {
      id: "__none__",
      version: 2,
    });
  } catch (err) {
    if (err && typeof err.statusCode === "number" && "info" in err) {
      return err.constructor;
    }
    throw err;
  }
  throw new Error("could not find the mock's CommercetoolsError class");
}

let CtError = null;

export function setErrorClass(cls) {
  CtError = cls;
}

// An error the mock renders as {statusCode, message, errors:[{code, message, ...extra}]}.
export function ctError(status, code, message, extra = {}) {
  return new CtError({ code, message, ...extra }, status);
}

// Runs fn after every earlier fn of the same key has settled (a per-project critical section).
const chains = new Map();
export function serialized(key, fn) {
  const prev = chains.get(key) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => {});
  chains.set(key, tail);
  tail.then(() => {
    if (chains.get(key) === tail) chains.delete(key);
  });
  return run;
}

// resourceUserProvidedIdentifiers as commercetools puts them on messages and notifications.
export function identifiers(resource) {
  const out = {};
  for (const name of ["key", "externalId", "orderNumber", "customerNumber", "sku"]) {
    if (resource?.[name] !== undefined && resource[name] !== null) out[name] = resource[name];
  }
  return out;
}

// In-process fan-out of messages and change notifications (to the subscription delivery).
export class Bus {
  constructor() {
    this.listeners = [];
  }

  on(fn) {
    this.listeners.push(fn);
  }

  emit(projectKey, notification) {
    for (const fn of this.listeners) {
      try {
        fn(projectKey, notification);
      } catch (err) {
        console.error("notification listener failed:", err);
      }
    }
  }
}

// Pending per-request side effects that update handlers record and the repository wrapper
// emits once the update has been stored (a failed update emits nothing).
export function pending(context) {
  if (!context.__ctmockPending) context.__ctmockPending = [];
  return context.__ctmockPending;
}

export function takePending(context) {
  const items = context.__ctmockPending ?? [];
  context.__ctmockPending = [];
  return items;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function intEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number.parseInt(raw, 10);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

// A change notification (ResourceCreated/ResourceUpdated/ResourceDeleted) for subscriptions.
export function emitChange(bus, projectKey, typeId, resource, notificationType, oldVersion) {
  const change = {
    notificationType,
    resource: { typeId, id: resource.id },
    resourceUserProvidedIdentifiers: identifiers(resource),
    version: resource.version,
    ...(oldVersion !== undefined ? { oldVersion } : {}),
    modifiedAt:
      notificationType === "ResourceDeleted"
        ? new Date().toISOString()
        : (resource.lastModifiedAt ?? new Date().toISOString()),
  };
  bus.emit(projectKey, { kind: "change", change });
}
