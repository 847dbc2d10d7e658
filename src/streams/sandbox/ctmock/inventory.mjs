// Inventory entries as commercetools keeps them: `key` kept, addQuantity, removeQuantity may go
// negative, changeQuantity keeps the reserved part (availableQuantity moves by the same delta),
// and InventoryEntryCreated / InventoryEntryQuantitySet / InventoryEntryDeleted messages.
import { ctError, pending, takePending } from "./hooks.mjs";

function checkQuantity(action) {
  if (!Number.isInteger(action.quantity)) {
    throw ctError(400, "InvalidJsonInput", `Request body does not contain valid JSON.`, {
      detailedErrorMessage: `actions -> quantity: Missing or non-integer value for ${action.action}`,
    });
  }
}

// Record the quantity change one action made; emitted after the update is stored.
function recordQuantitySet(context, entry, oldOnStock, oldAvailable) {
  if (oldOnStock === entry.quantityOnStock && oldAvailable === entry.availableQuantity) return;
  pending(context).push({
    type: "InventoryEntryQuantitySet",
    // the handler runs before the mock bumps the working copy's version for this action
    resourceVersion: entry.version + 1,
    fields: {
      oldQuantityOnStock: oldOnStock,
      newQuantityOnStock: entry.quantityOnStock,
      oldAvailableQuantity: oldAvailable,
      newAvailableQuantity: entry.availableQuantity,
      sku: entry.sku,
      ...(entry.supplyChannel ? { supplyChannel: entry.supplyChannel } : {}),
    },
  });
}

function moveQuantity(context, entry, delta) {
  const oldOnStock = entry.quantityOnStock;
  const oldAvailable = entry.availableQuantity;
  entry.quantityOnStock = oldOnStock + delta;
  entry.availableQuantity = oldAvailable + delta;
  recordQuantitySet(context, entry, oldOnStock, oldAvailable);
}

export function patchInventory({ repos, storage }, log) {
  const repo = repos["inventory-entry"];
  const handler = repo.actions;

  handler.addQuantity = (context, entry, action) => {
    checkQuantity(action);
    moveQuantity(context, entry, action.quantity);
  };
  // the real API lets quantityOnStock go negative; the mock clamps at 0
  handler.removeQuantity = (context, entry, action) => {
    checkQuantity(action);
    moveQuantity(context, entry, -action.quantity);
  };
  handler.changeQuantity = (context, entry, action) => {
    checkQuantity(action);
    moveQuantity(context, entry, action.quantity - entry.quantityOnStock);
  };
  handler.setKey = (context, entry, { key }) => {
    if (key === undefined || key === null) delete entry.key;
    else entry.key = key;
  };

  const create = repo.create.bind(repo);
  repo.create = async (context, draft) => {
    if (draft?.key !== undefined && draft.key !== null) {
      if (await repo.getByKey(context, draft.key)) {
        throw ctError(
          400,
          "DuplicateField",
          `A duplicate value '"${draft.key}"' exists for field 'key'.`,
          {
            field: "key",
            duplicateValue: draft.key,
          },
        );
      }
    }
    let entry = await create(context, draft);
    if (draft?.key !== undefined && draft.key !== null) {
      entry.key = draft.key; // the mock drops it
      entry = await storage.add(context.projectKey, "inventory-entry", entry);
    }
    await log.emit(context, "inventory-entry", entry, entry.version, "InventoryEntryCreated", {
      inventoryEntry: entry,
    });
    return entry;
  };

  const update = repo.processUpdateActions.bind(repo);
  repo.processUpdateActions = async (context, resource, version, actions) => {
    takePending(context);
    const updated = await update(context, resource, version, actions);
    for (const item of takePending(context)) {
      await log.emit(
        context,
        "inventory-entry",
        updated,
        item.resourceVersion,
        item.type,
        item.fields,
      );
    }
    return updated;
  };

  const remove = repo.delete.bind(repo);
  repo.delete = async (context, id, params) => {
    const entry = await remove(context, id, params);
    if (entry) {
      await log.emit(context, "inventory-entry", entry, entry.version, "InventoryEntryDeleted", {
        sku: entry.sku,
        ...(entry.supplyChannel ? { supplyChannel: entry.supplyChannel } : {}),
      });
    }
    return entry;
  };
}
