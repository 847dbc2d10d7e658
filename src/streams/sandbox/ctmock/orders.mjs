// Orders with commercetools' inventory effects. Carts keep inventoryMode (cart level and per
// line item, with the line item's supplyChannel); creating or importing an order applies, per
// line item, its effective mode (its own, else the order's):
//   TrackOnly       deduct even when short; OutOfStock only when no matching entry exists
//   ReserveOnOrder  OutOfStock for the whole order when available < quantity (unless the entry
//                   has restockableInDays), else deduct
//   ReserveOnCart   reserved when the cart is created (OutOfStock refuses the cart):
//                   availableQuantity drops then, quantityOnStock when it is ordered
//   None            nothing
// Deductions change quantityOnStock and availableQuantity, bump version/lastModifiedAt, and emit
// no InventoryEntryQuantitySet. CT_MOCK_ORDER_STOCK_DELAY_MS delays when they become visible on
// the entry (commercetools documents up to 10 s); the OutOfStock check counts them at once.
// Cancelling an order (orderState -> Cancelled) gives its deductions back: an emulator choice,
// real projects restock by their own process.
import { ctError, emitChange, pending, serialized, takePending } from "./hooks.mjs";

const MODES = new Set(["None", "TrackOnly", "ReserveOnOrder", "ReserveOnCart"]);

class Stock {
  constructor(storage, bus, delayMs) {
    this.storage = storage;
    this.bus = bus;
    this.delayMs = delayMs;
    this.unseen = new Map(); // "<projectKey>/<entry id>" -> available delta not yet on the entry
  }

  async entryFor(projectKey, sku, channelId) {
    const page = await this.storage.query(projectKey, "inventory-entry", {
      where: [`sku = ${JSON.stringify(sku)}`],
      limit: 500,
    });
    return (
      page.results.find((e) =>
        channelId ? e.supplyChannel?.id === channelId : !e.supplyChannel,
      ) ?? null
    );
  }

  available(projectKey, entry) {
    return entry.availableQuantity + (this.unseen.get(`${projectKey}/${entry.id}`) ?? 0);
  }

  // Deductions per entry for `lines`, or OutOfStock naming the line items and skus at fault.
  async plan(projectKey, lines) {
    const byEntry = new Map();
    const short = [];
    for (const line of lines) {
      if (line.mode === "None") continue;
      const entry = line.sku ? await this.entryFor(projectKey, line.sku, line.channelId) : null;
      if (!entry) {
        short.push(line);
        continue;
      }
      const d = byEntry.get(entry.id) ?? { entry, quantity: 0, reserve: [] };
      d.quantity += line.quantity;
      if (line.mode !== "TrackOnly") d.reserve.push(line);
      byEntry.set(entry.id, d);
    }
    for (const d of byEntry.values()) {
      const restockable =
        d.entry.restockableInDays !== undefined && d.entry.restockableInDays !== null;
      if (d.reserve.length && !restockable && this.available(projectKey, d.entry) < d.quantity) {
        short.push(...d.reserve);
      }
    }
    if (short.length) {
      const skus = [...new Set(short.map((l) => l.sku))];
      const message = `Some line items are out of stock at the time of placing the order: ${skus.join(", ")}.`;
      throw ctError(400, "OutOfStock", message, {
        lineItems: short.map((l) => l.lineItemId).filter(Boolean),
        skus,
      });
    }
    return [...byEntry.values()].map((d) => ({ entryId: d.entry.id, quantity: d.quantity }));
  }

  // Change an entry's quantityOnStock by `onStock` and availableQuantity by `available`.
  move(projectKey, { entryId, onStock, available }) {
    if (this.delayMs <= 0) return this.write(projectKey, entryId, onStock, available);
    const k = `${projectKey}/${entryId}`;
    this.unseen.set(k, (this.unseen.get(k) ?? 0) + available);
    setTimeout(() => {
      const left = (this.unseen.get(k) ?? 0) - available;
      if (left === 0) this.unseen.delete(k);
      else this.unseen.set(k, left);
      this.write(projectKey, entryId, onStock, available).catch((err) =>
        console.error("stock write failed:", err),
      );
    }, this.delayMs);
    return Promise.resolve();
  }

  async write(projectKey, entryId, onStock, available) {
    if (onStock === 0 && available === 0) return;
    const entry = await this.storage.get(projectKey, "inventory-entry", entryId);
    if (!entry) return; // deleted meanwhile
    const oldVersion = entry.version;
    entry.quantityOnStock += onStock;
    entry.availableQuantity += available;
    entry.version += 1;
    entry.lastModifiedAt = new Date().toISOString();
    await this.storage.add(projectKey, "inventory-entry", entry);
    emitChange(this.bus, projectKey, "inventory-entry", entry, "ResourceUpdated", oldVersion);
  }
}

async function channelId(storage, projectKey, identifier) {
  if (!identifier) return undefined;
  const channel = await storage.getByResourceIdentifier(projectKey, {
    ...identifier,
    typeId: "channel",
  });
  return channel.id;
}

function checkMode(mode) {
  if (mode !== undefined && mode !== null && !MODES.has(mode)) {
    throw ctError(400, "InvalidJsonInput", "Request body does not contain valid JSON.", {
      detailedErrorMessage: `inventoryMode: '${mode}' is not one of ${[...MODES].join(", ")}`,
    });
  }
}

export function patchOrders({ repos, storage }, log, bus, delayMs) {
  const stock = new Stock(storage, bus, delayMs);
  const deducted = new Map(); // "<projectKey>/<order id>" -> [{entryId, onStock, available}]
  const reserved = new Map(); // "<projectKey>/<cart id>" -> [{entryId, quantity}]
  const lock = (projectKey) => `stock/${projectKey}`;
  const linesOf = (holder, mode) =>
    holder.lineItems.map((li) => ({
      lineItemId: li.id,
      sku: li.variant?.sku,
      quantity: li.quantity,
      channelId: li.supplyChannel?.id,
      mode: li.inventoryMode ?? mode,
    }));
  const carts = repos.cart;
  const orders = repos.order;

  const createCart = carts.create.bind(carts);
  carts.create = (context, draft) =>
    serialized(lock(context.projectKey), () => newCart(context, draft));
  async function newCart(context, draft) {
    checkMode(draft?.inventoryMode);
    const drafts = draft?.lineItems ?? [];
    const channels = [];
    for (const li of drafts) {
      checkMode(li.inventoryMode);
      channels.push(await channelId(storage, context.projectKey, li.supplyChannel));
    }
    let cart = await createCart(context, draft);
    cart.inventoryMode = draft.inventoryMode ?? "None"; // the mock always writes None
    drafts.forEach((li, i) => {
      const item = cart.lineItems[i];
      if (!item) return;
      if (li.inventoryMode) item.inventoryMode = li.inventoryMode;
      if (channels[i]) item.supplyChannel = { typeId: "channel", id: channels[i] };
    });
    cart = await storage.add(context.projectKey, "cart", cart);
    const onCart = linesOf(cart, cart.inventoryMode).filter((l) => l.mode === "ReserveOnCart");
    if (onCart.length) {
      let plan;
      try {
        plan = await stock.plan(context.projectKey, onCart);
      } catch (err) {
        await storage.delete(context.projectKey, "cart", cart.id); // refused: no cart
        throw err;
      }
      for (const d of plan)
        await stock.move(context.projectKey, {
          entryId: d.entryId,
          onStock: 0,
          available: -d.quantity,
        });
      reserved.set(`${context.projectKey}/${cart.id}`, plan);
    }
    return cart;
  }

  // Deleting a cart releases what it reserved.
  const removeCart = carts.delete.bind(carts);
  carts.delete = (context, id, params) =>
    serialized(lock(context.projectKey), async () => {
      const cart = await removeCart(context, id, params);
      const k = `${context.projectKey}/${cart?.id}`;
      if (cart && reserved.has(k)) {
        for (const d of reserved.get(k))
          await stock.move(context.projectKey, {
            entryId: d.entryId,
            onStock: 0,
            available: d.quantity,
          });
        reserved.delete(k);
      }
      return cart;
    });

  async function checkOrderNumber(projectKey, orderNumber) {
    if (!orderNumber) return;
    const page = await storage.query(projectKey, "order", {
      where: [`orderNumber = ${JSON.stringify(orderNumber)}`],
    });
    if (page.total > 0) {
      throw ctError(
        400,
        "DuplicateField",
        `A duplicate value '"${orderNumber}"' exists for field 'orderNumber'.`,
        {
          field: "orderNumber",
          duplicateValue: orderNumber,
        },
      );
    }
  }

  // `plan`: deductions of both quantities; `held`: reservations the order turns into stock.
  async function settle(context, order, plan, held, type) {
    const projectKey = context.projectKey;
    // the message first: on commercetools the stock change follows the order
    await log.emit(context, "order", order, order.version, type, { order });
    for (const d of plan)
      await stock.move(projectKey, {
        entryId: d.entryId,
        onStock: -d.quantity,
        available: -d.quantity,
      });
    for (const d of held)
      await stock.move(projectKey, { entryId: d.entryId, onStock: -d.quantity, available: 0 });
    const taken = [...plan, ...held].map((d) => ({
      entryId: d.entryId,
      onStock: -d.quantity,
      available: -d.quantity,
    }));
    if (taken.length) deducted.set(`${projectKey}/${order.id}`, taken);
    return (await storage.get(projectKey, "order", order.id)) ?? order;
  }

  const createOrder = orders.create.bind(orders);
  orders.create = (context, draft) =>
    serialized(lock(context.projectKey), async () => {
      const projectKey = context.projectKey;
      const ref = draft?.cart ?? (draft?.id ? { typeId: "cart", id: draft.id } : undefined);
      if (!ref) {
        throw ctError(400, "InvalidJsonInput", "Request body does not contain valid JSON.", {
          detailedErrorMessage: "cart: Missing required value",
        });
      }
      const cart = await storage.getByResourceIdentifier(projectKey, { ...ref, typeId: "cart" });
      if (draft.version !== cart.version) {
        throw ctError(
          409,
          "ConcurrentModification",
          `Object ${cart.id} has a different version than expected. Expected: ${draft.version} - Actual: ${cart.version}.`,
          {
            currentVersion: cart.version,
          },
        );
      }
      if (cart.cartState === "Ordered") {
        throw ctError(400, "InvalidOperation", "The cart has already been ordered.");
      }
      await checkOrderNumber(projectKey, draft.orderNumber);
      const mode = cart.inventoryMode ?? "None";
      const held = reserved.get(`${projectKey}/${cart.id}`) ?? [];
      // a ReserveOnCart cart without a reservation (its lines came later) reserves now
      const plan = await stock.plan(
        projectKey,
        linesOf(cart, mode).filter((l) => !(held.length && l.mode === "ReserveOnCart")),
      );
      let order = await createOrder(context, { ...draft, cart: { typeId: "cart", id: cart.id } });
      order.inventoryMode = mode;
      order = await storage.add(projectKey, "order", order);
      cart.cartState = "Ordered";
      cart.version += 1;
      cart.lastModifiedAt = new Date().toISOString();
      await storage.add(projectKey, "cart", cart);
      reserved.delete(`${projectKey}/${cart.id}`);
      return settle(context, order, plan, held, "OrderCreated");
    });

  const importOrder = orders.import.bind(orders);
  orders.import = (context, draft) =>
    serialized(lock(context.projectKey), async () => {
      const projectKey = context.projectKey;
      checkMode(draft?.inventoryMode);
      await checkOrderNumber(projectKey, draft?.orderNumber);
      const mode = draft.inventoryMode ?? "None";
      const drafts = draft.lineItems ?? [];
      const channels = [];
      for (const li of drafts) {
        checkMode(li.inventoryMode);
        channels.push(await channelId(storage, projectKey, li.supplyChannel));
      }
      const plan = await stock.plan(
        projectKey,
        drafts.map((li, i) => ({
          lineItemId: undefined, // line item ids exist only once the order does
          sku: li.variant?.sku,
          quantity: li.quantity ?? 1,
          channelId: channels[i],
          mode: li.inventoryMode ?? mode,
        })),
      );
      let order = await importOrder(context, draft);
      order.inventoryMode = mode;
      drafts.forEach((li, i) => {
        const item = order.lineItems[i];
        if (!item) return;
        if (li.inventoryMode) item.inventoryMode = li.inventoryMode;
        if (channels[i]) item.supplyChannel = { typeId: "channel", id: channels[i] };
      });
      order = await storage.add(projectKey, "order", order);
      return settle(context, order, plan, [], "OrderImported");
    });

  const handler = orders.actions;
  const changeOrderState = handler.changeOrderState.bind(handler);
  handler.changeOrderState = (context, order, action) => {
    const old = order.orderState;
    changeOrderState(context, order, action);
    if (old === order.orderState) return;
    pending(context).push({
      type: "OrderStateChanged",
      resourceVersion: order.version + 1,
      fields: { orderState: order.orderState, oldOrderState: old },
    });
  };

  const update = orders.processUpdateActions.bind(orders);
  orders.processUpdateActions = async (context, resource, version, actions) => {
    takePending(context);
    const updated = await update(context, resource, version, actions);
    for (const item of takePending(context)) {
      await log.emit(context, "order", updated, item.resourceVersion, item.type, item.fields);
      const k = `${context.projectKey}/${updated.id}`;
      if (item.fields.orderState === "Cancelled" && deducted.has(k)) {
        const plan = deducted.get(k);
        deducted.delete(k); // once: a re-opened and re-cancelled order is not restocked twice
        for (const d of plan) {
          await stock.move(context.projectKey, {
            entryId: d.entryId,
            onStock: -d.onStock,
            available: -d.available,
          });
        }
      }
    }
    return (await storage.get(context.projectKey, "order", updated.id)) ?? updated;
  };

  const remove = orders.delete.bind(orders);
  orders.delete = async (context, id, params) => {
    const order = await remove(context, id, params);
    if (order) {
      deducted.delete(`${context.projectKey}/${order.id}`);
      await log.emit(context, "order", order, order.version, "OrderDeleted", { order });
    }
    return order;
  };
}
