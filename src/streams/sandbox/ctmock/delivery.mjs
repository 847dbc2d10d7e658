// Subscription delivery to Kafka for destinations of type ConfluentCloud (commercetools' Kafka
// destination). Every message and change notification is matched against the project's
// subscriptions (messages[]: resourceTypeId + optional types[]; changes[]: resourceTypeId),
// rendered in the subscription's format (Platform, or a CloudEvents 1.0 envelope) and queued
// per subscription. A queue is sent in order, in batches, with the destination's one fixed
// record key; while the broker is unreachable it retries with backoff (the server keeps
// running). A loopback bootstrapServer (or a host in CT_MOCK_KAFKA_PLAINTEXT_HOSTS) is spoken
// to in PLAINTEXT; any other in SASL_SSL/PLAIN with apiKey/apiSecret as the real destination.
// CT_MOCK_DELIVERY_DROP_EVERY=N drops every Nth notification of each subscription (0 = off).
import { randomUUID } from "node:crypto";
import { Kafka, Partitioners, logLevel } from "kafkajs";
import { ctError, sleep } from "./hooks.mjs";

const BATCH = 500;
const BACKOFF_MS = [100, 5000]; // first retry, cap
const TEST_DELIVERY_TIMEOUT_MS = 10000;

// URL path segment of a resource type, for CloudEvents `source`.
const PATHS = {
  "inventory-entry": "inventory",
  "key-value-document": "custom-objects",
  "product-projection": "product-projections",
  category: "categories",
  "business-unit": "business-units",
};
const pathOf = (typeId) => PATHS[typeId] ?? `${typeId}s`;

// Hosts spoken to in PLAINTEXT besides loopback, e.g. a broker container's service name.
const PLAINTEXT_HOSTS = new Set(
  (process.env.CT_MOCK_KAFKA_PLAINTEXT_HOSTS ?? "")
    .split(",")
    .map((h) => h.trim())
    .filter(Boolean),
);

export function isPlaintext(bootstrap) {
  const host = String(bootstrap)
    .split(",")[0]
    .trim()
    .replace(/:\d+$/, "")
    .replace(/^\[|\]$/g, "");
  return (
    host === "localhost" ||
    host === "::1" ||
    /^127\.\d+\.\d+\.\d+$/.test(host) ||
    PLAINTEXT_HOSTS.has(host)
  );
}

function acksOf(acks) {
  if (acks === "0") return 0;
  if (acks === "1") return 1;
  return -1; // "all", and the default
}

export function platformPayload(projectKey, notification) {
  if (notification.kind === "message") {
    return { notificationType: "Message", projectKey, ...notification.message };
  }
  const { notificationType, ...rest } = notification.change;
  return { notificationType, projectKey, ...rest };
}

export function cloudEvent(projectKey, notification) {
  const data = platformPayload(projectKey, notification);
  const typeId = data.resource.typeId;
  const base = {
    specversion: "1.0",
    source: `/${projectKey}/${pathOf(typeId)}`,
    subject: data.resource.id,
  };
  if (notification.kind === "message") {
    const m = notification.message;
    return {
      id: m.id,
      ...base,
      type: `com.commercetools.${typeId}.message.${m.type}`,
      time: m.createdAt,
      dataref: `/${projectKey}/messages/${m.id}`,
      sequence: String(m.sequenceNumber),
      sequencetype: "Integer",
      data,
    };
  }
  return {
    id: randomUUID(),
    ...base,
    type: `com.commercetools.${typeId}.change.${data.notificationType}`,
    time: data.modifiedAt,
    data,
  };
}

function render(subscription, projectKey, notification) {
  const format = subscription.format?.type ?? "Platform";
  const body =
    format === "CloudEvents"
      ? cloudEvent(projectKey, notification)
      : platformPayload(projectKey, notification);
  return JSON.stringify(body);
}

function matches(subscription, notification) {
  if (notification.kind === "message") {
    const m = notification.message;
    return (subscription.messages ?? []).some(
      (s) =>
        s.resourceTypeId === m.resource.typeId && (!s.types?.length || s.types.includes(m.type)),
    );
  }
  const typeId = notification.change.resource.typeId;
  return (subscription.changes ?? []).some((s) => s.resourceTypeId === typeId);
}

// One kafkajs producer per (bootstrap server, credentials), connected on first use.
class Producers {
  constructor() {
    this.byTarget = new Map();
  }

  targetOf(destination) {
    return `${destination.bootstrapServer}|${destination.apiKey ?? ""}`;
  }

  async get(destination) {
    const target = this.targetOf(destination);
    let entry = this.byTarget.get(target);
    if (!entry) {
      const plaintext = isPlaintext(destination.bootstrapServer);
      const kafka = new Kafka({
        clientId: "ctmock-subscriptions",
        brokers: String(destination.bootstrapServer)
          .split(",")
          .map((s) => s.trim()),
        ssl: !plaintext,
        sasl: plaintext
          ? undefined
          : {
              mechanism: "plain",
              username: destination.apiKey ?? "",
              password: destination.apiSecret ?? "",
            },
        connectionTimeout: 3000,
        requestTimeout: 10000,
        retry: { retries: 0 }, // the queue retries, with its own backoff
        logLevel: logLevel.NOTHING,
      });
      const producer = kafka.producer({
        allowAutoTopicCreation: true,
        createPartitioner: Partitioners.DefaultPartitioner, // Java client's key hashing
        retry: { retries: 0 },
      });
      entry = { producer, connected: producer.connect() };
      entry.connected.catch(() => {}); // awaited (and reported) by send
      this.byTarget.set(target, entry);
    }
    await entry.connected;
    return entry.producer;
  }

  async send(destination, values) {
    try {
      const producer = await this.get(destination);
      await producer.send({
        topic: destination.topic,
        acks: acksOf(destination.acks),
        messages: values.map((value) => ({ key: destination.key ?? null, value })),
      });
    } catch (err) {
      await this.reset(destination);
      throw err;
    }
  }

  async reset(destination) {
    const target = this.targetOf(destination);
    const entry = this.byTarget.get(target);
    this.byTarget.delete(target);
    if (entry) await entry.producer.disconnect().catch(() => {});
  }

  async close() {
    const entries = [...this.byTarget.values()];
    this.byTarget.clear();
    await Promise.all(entries.map((e) => e.producer.disconnect().catch(() => {})));
  }
}

// In-order queue of one subscription's rendered notifications.
class Outbox {
  constructor(producers, id) {
    this.producers = producers;
    this.id = id;
    this.items = []; // {destination, target, value}
    this.running = false;
    this.closed = false;
    this.lastError = "";
  }

  push(destination, value) {
    // subscriptions are read as fresh copies: batch by what the destination says, not identity
    this.items.push({ destination, target: JSON.stringify(destination), value });
    if (!this.running) this.run();
  }

  async run() {
    this.running = true;
    let backoff = BACKOFF_MS[0];
    try {
      while (this.items.length && !this.closed) {
        const { destination, target } = this.items[0];
        let n = 0;
        while (n < this.items.length && n < BATCH && this.items[n].target === target) n++;
        try {
          await this.producers.send(
            destination,
            this.items.slice(0, n).map((i) => i.value),
          );
          this.items.splice(0, n);
          backoff = BACKOFF_MS[0];
          this.lastError = "";
        } catch (err) {
          const text = String(err?.message ?? err);
          if (text !== this.lastError) {
            console.error(
              `subscription ${this.id}: delivery to ${destination.bootstrapServer} failed (${text}); retrying`,
            );
            this.lastError = text;
          }
          await sleep(backoff);
          backoff = Math.min(backoff * 2, BACKOFF_MS[1]);
        }
      }
    } finally {
      this.running = false;
    }
  }
}

export class Delivery {
  constructor({ repos, storage }, bus, dropEvery) {
    this.storage = storage;
    this.repos = repos;
    this.dropEvery = dropEvery;
    this.producers = new Producers();
    this.outboxes = new Map(); // subscription id -> Outbox
    this.counts = new Map(); // subscription id -> notifications seen (for dropEvery)
    // one chain: notifications reach the queues in the order they were emitted
    this.chain = Promise.resolve();
    bus.on((projectKey, notification) => {
      this.chain = this.chain
        .then(() => this.dispatch(projectKey, notification))
        .catch((err) => console.error("dispatch failed:", err));
    });
    this.patchSubscriptions();
  }

  outbox(id) {
    let box = this.outboxes.get(id);
    if (!box) {
      box = new Outbox(this.producers, id);
      this.outboxes.set(id, box);
    }
    return box;
  }

  async dispatch(projectKey, notification) {
    const subscriptions = await this.storage.all(projectKey, "subscription");
    for (const s of subscriptions) {
      if (s.destination?.type !== "ConfluentCloud" || !matches(s, notification)) continue;
      const seen = (this.counts.get(s.id) ?? 0) + 1;
      this.counts.set(s.id, seen);
      if (this.dropEvery > 0 && seen % this.dropEvery === 0) continue; // a lost notification
      this.outbox(s.id).push(s.destination, render(s, projectKey, notification));
    }
  }

  // commercetools sends a test notification (ResourceCreated of the subscription itself) on
  // create and refuses the subscription when it cannot be delivered.
  patchSubscriptions() {
    const repo = this.repos.subscription;
    const create = repo.create.bind(repo);
    repo.create = async (context, draft) => {
      const destination = draft?.destination;
      if (destination?.type === "ConfluentCloud") {
        for (const field of ["bootstrapServer", "topic"]) {
          if (!destination[field]) {
            throw ctError(400, "InvalidJsonInput", "Request body does not contain valid JSON.", {
              detailedErrorMessage: `destination -> ${field}: Missing required value`,
            });
          }
        }
      }
      const subscription = await create(context, draft);
      if (destination?.type !== "ConfluentCloud") return subscription;
      const test = {
        kind: "change",
        change: {
          notificationType: "ResourceCreated",
          resource: { typeId: "subscription", id: subscription.id },
          resourceUserProvidedIdentifiers: subscription.key ? { key: subscription.key } : {},
          version: subscription.version,
          modifiedAt: subscription.lastModifiedAt,
        },
      };
      try {
        await this.testDelivery(destination, render(subscription, context.projectKey, test));
      } catch (err) {
        await this.storage.delete(context.projectKey, "subscription", subscription.id);
        await this.producers.reset(destination);
        throw ctError(
          400,
          "InvalidInput",
          `A test message could not be delivered to this destination: ConfluentCloud ${destination.bootstrapServer} topic ${destination.topic} (${err?.message ?? err}). Please make sure your destination is correctly configured.`,
        );
      }
      return subscription;
    };
    const remove = repo.delete.bind(repo);
    repo.delete = async (context, id, params) => {
      const deleted = await remove(context, id, params);
      if (deleted) {
        const box = this.outboxes.get(deleted.id);
        if (box) box.closed = true;
        this.outboxes.delete(deleted.id);
      }
      return deleted;
    };
  }

  // Retries what a reachable broker answers while a topic is being created or led; an
  // unreachable broker fails at once, as commercetools' own check does.
  async testDelivery(destination, value) {
    const deadline = Date.now() + TEST_DELIVERY_TIMEOUT_MS;
    let backoff = BACKOFF_MS[0];
    for (;;) {
      try {
        await withTimeout(this.producers.send(destination, [value]), TEST_DELIVERY_TIMEOUT_MS);
        return;
      } catch (err) {
        if (unreachable(err) || Date.now() + backoff > deadline) throw err;
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 1000);
      }
    }
  }

  close() {
    for (const box of this.outboxes.values()) box.closed = true;
    return this.producers.close();
  }
}

function unreachable(err) {
  for (let e = err; e; e = e.originalError ?? e.cause) {
    if (e.name === "KafkaJSConnectionError" || /ECONNREFUSED|ENOTFOUND/.test(String(e.message))) {
      return true;
    }
    if (e === (e.originalError ?? e.cause)) break;
  }
  return false;
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
