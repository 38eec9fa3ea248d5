// A real Tern for the browser tests: a throwaway PostgreSQL database, the
// `tern` binary (TERN_TEST_BIN, default ../target/debug/tern) serving the API,
// the dashboard and its SMTP server on free loopback ports, users made with
// its CLI, and
// Debian's chromium driven by playwright-core (no browser download).
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const OUTPUT = resolve(here, "..", "e2e-output");
const TERN_TEST_BIN = process.env.TERN_TEST_BIN ?? resolve(here, "..", "..", "target", "debug", "tern");
const DATABASE_BASE = (process.env.TERN_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432").replace(/\/$/, "");
const CHROMIUM = process.env.TERN_TEST_CHROMIUM ?? "/usr/bin/chromium";

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

/** The environment without TERN_* settings: a developer's shell must not
 * point the tern under test at another database or port. */
const CHILD_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TERN_")));

function psql(sql) {
  execFileSync("psql", [`${DATABASE_BASE}/postgres`, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], { stdio: "pipe" });
}

export class Tern {
  static async start() {
    const tern = new Tern();
    await tern.#start();
    return tern;
  }

  async #start() {
    this.database = `tern_e2e_${randomBytes(6).toString("hex")}`;
    this.dir = mkdtempSync(join(tmpdir(), "tern-e2e-"));
    this.port = await freePort();
    this.dnsPort = await freePort();
    this.smtpPort = await freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    psql(`CREATE DATABASE ${this.database}`);
    this.config = join(this.dir, "tern.toml");
    writeFileSync(
      this.config,
      [
        'public_hostname = "tern.test"',
        "[database]",
        `url = "${DATABASE_BASE}/${this.database}"`,
        "max_connections = 5",
        "[http]",
        `listen = "127.0.0.1:${this.port}"`,
        // Domain checks ask a loopback port where nothing answers: no test
        // query leaves the machine.
        "[dns]",
        `nameservers = ["127.0.0.1:${this.dnsPort}"]`,
        "timeout_ms = 500",
        // The inbound SMTP server, for mail to routes.
        "[smtp]",
        `listen = ["127.0.0.1:${this.smtpPort}"]`,
        `self_signed_dir = "${join(this.dir, "smtp-tls")}"`,
        // Webhook tests post to a receiver on loopback over plain HTTP.
        "[webhooks]",
        "allow_private_targets = true",
        "allow_http = true",
        "[log]",
        'filter = "warn"',
        "[secrets]",
        `key_file = "${join(this.dir, "secrets.key")}"`,
        "",
      ].join("\n"),
    );
    this.cli("migrate");
    this.log = [];
    this.process = spawn(TERN_TEST_BIN, ["--config", this.config, "serve"], {
      env: CHILD_ENV,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.process.stdout.on("data", (d) => this.log.push(String(d)));
    this.process.stderr.on("data", (d) => this.log.push(String(d)));
    for (let i = 0; i < 200; i++) {
      try {
        const res = await fetch(`${this.base}/healthz`);
        if (res.ok) return;
      } catch {
        // not up yet
      }
      if (this.process.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`tern did not start on ${this.base}:\n${this.log.join("")}`);
  }

  cli(...args) {
    return execFileSync(TERN_TEST_BIN, ["--config", this.config, ...args], {
      encoding: "utf8",
      stdio: "pipe",
      env: CHILD_ENV,
    });
  }

  /** A user made with `tern admin create-user`. */
  createUser(email, password, name = "") {
    this.cli("admin", "create-user", "--email", email, "--name", name, "--password", password);
    return { email, password };
  }

  /** The API as `user` (session token from POST /v1/auth/login). */
  async as(user) {
    const login = await this.request("POST", "/v1/auth/login", { body: user });
    const token = login.body.token;
    return (method, path, body) => this.request(method, path, { body, token });
  }

  async request(method, path, { body, token } = {}) {
    const headers = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, headers: res.headers, body: parsed };
  }

  async stop() {
    if (this.process && this.process.exitCode === null) {
      const exited = new Promise((r) => this.process.once("exit", r));
      this.process.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (this.process.exitCode === null) this.process.kill("SIGKILL");
    }
    try {
      psql(`DROP DATABASE IF EXISTS ${this.database} WITH (FORCE)`);
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** Headless Debian chromium, offline: no background traffic, no sandbox
 * (the tests run as root). */
export async function launchBrowser() {
  mkdirSync(OUTPUT, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
}
