// The dashboard in a real browser against a real Tern: an administrator
// sets up a server and sends a first message; a viewer can only look; a
// second organization's data never shows. Screenshots of the main pages
// land in web/e2e-output/, each page checked with axe-core.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import axe from "axe-core";
import { launchBrowser, OUTPUT, Tern } from "./harness.mjs";

const ADMIN = { email: "ada@acme.test", password: "correct horse battery staple" };
const VIEWER = { email: "vic@acme.test", password: "viewer password 123" };
const OTHER = { email: "olga@globex.test", password: "other password 456" };

let tern;
let browser;
let page;
const state = {};

async function newPage(user, colorScheme = "light") {
  const context = await browser.newContext({
    permissions: ["clipboard-read", "clipboard-write"],
    viewport: { width: 1280, height: 900 },
    colorScheme,
  });
  const p = await context.newPage();
  p.on("pageerror", (e) => console.error("page error:", e));
  await p.goto(tern.base + "/");
  await p.getByLabel("Email").fill(user.email);
  await p.getByLabel("Password").fill(user.password);
  await p.getByRole("button", { name: "Log in" }).click();
  await p.getByRole("heading", { name: "Organizations", level: 1 }).waitFor();
  return p;
}

/** No serious or critical accessibility violation on the page as it is. */
async function checkA11y(p, name) {
  await p.evaluate(axe.source);
  const result = await p.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const serious = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    serious.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`),
    [],
    `accessibility violations on ${name}`,
  );
}

async function snap(p, name) {
  await p.screenshot({ path: join(OUTPUT, `${name}.png`), fullPage: true });
  await checkA11y(p, name);
}

async function nav(p, label) {
  await p.getByRole("navigation", { name: "Server" }).getByRole("link", { name: label, exact: true }).click();
}

describe("dashboard", () => {
  before(async () => {
    tern = await Tern.start();
    tern.createUser(ADMIN.email, ADMIN.password, "Ada Admin");
    tern.createUser(VIEWER.email, VIEWER.password, "Vic Viewer");
    tern.createUser(OTHER.email, OTHER.password, "Olga Other");
    // The other organization, made through the API by its own owner.
    const other = await tern.as(OTHER);
    const org = await other("POST", "/v1/organizations", { name: "Globex" });
    const server = await other("POST", `/v1/organizations/${org.body.id}/servers`, { name: "Globex mail" });
    state.otherServer = server.body.id;
    browser = await launchBrowser();
    page = await newPage(ADMIN);
  });

  after(async () => {
    await browser?.close();
    await tern?.stop();
  });

  test("serves the app with a policy that forbids inline scripts", async () => {
    const res = await fetch(tern.base + "/organizations/whatever");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /text\/html/);
    const csp = res.headers.get("content-security-policy");
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /script-src[^;]*unsafe-inline/);
    const html = await res.text();
    const asset = html.match(/src="(\/assets\/[^"]+\.js)"/)?.[1];
    assert.ok(asset, "index.html loads a hashed script");
    const js = await fetch(tern.base + asset);
    assert.match(js.headers.get("content-type"), /javascript/);
    assert.match(js.headers.get("cache-control"), /immutable/);
    const api = await fetch(tern.base + "/v1/no-such-route");
    assert.equal(api.status, 404);
    assert.equal((await api.json()).error.code, "not_found");
  });

  test("an administrator creates an organization and a server", async () => {
    await page.getByText("You belong to no organization yet.").waitFor();
    await snap(page, "organizations-empty");
    await page.getByLabel("Organization name").fill("Acme");
    await page.getByRole("button", { name: "Create organization" }).click();
    await page.getByRole("heading", { name: "Acme", level: 1 }).waitFor();
    state.org = page.url().split("/").pop();
    await page.getByText("No servers yet.").waitFor();
    await page.getByLabel("Server name").fill("Transactional");
    await page.getByRole("button", { name: "Create server" }).click();
    await page.getByRole("heading", { name: "Transactional: overview" }).waitFor();
    state.server = page.url().split("/").pop();
    await page.getByText("Nothing sent in the last 30 days.").waitFor();
  });

  test("adds a domain and copies its DKIM record", async () => {
    await nav(page, "Domains");
    await page.getByLabel("Domain name").fill("acme.example");
    await page.getByRole("button", { name: "Add domain" }).click();
    await page.getByRole("heading", { name: "acme.example" }).waitFor();
    const dkimRow = page.locator('tr[data-purpose="dkim"]');
    await dkimRow.getByRole("button", { name: "Copy the dkim record value" }).click();
    await dkimRow.getByText("Copied").first().waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    const admin = await tern.as(ADMIN);
    const domains = await admin("GET", `/v1/servers/${state.server}/domains`);
    const dkim = domains.body.data[0].dns_records.find((r) => r.purpose === "dkim");
    assert.equal(copied, dkim.value);
    assert.match(copied, /^v=DKIM1; k=rsa; p=/);
    await page.getByRole("button", { name: "Check now" }).click();
    // Test DNS answers nothing here: the check ends, with its time.
    await page.getByText("last checked never").waitFor({ state: "detached" });
    await page.getByRole("button", { name: "Check now" }).waitFor();
    await snap(page, "domains");
  });

  test("creates an API key, shown once, and sends with it", async () => {
    await nav(page, "API keys");
    await page.getByText("No API keys yet.").waitFor();
    await page.getByLabel("Key name").fill("web app");
    await page.getByRole("button", { name: "Create key" }).click();
    const secret = (await page.getByTestId("secret").textContent()).trim();
    assert.match(secret, /^tern_/);
    await snap(page, "api-key-created");
    await page.getByRole("button", { name: "I have copied it" }).click();
    await page.getByTestId("secret").waitFor({ state: "detached" });
    await page.reload();
    await page.getByLabel("Email").fill(ADMIN.email);
    await page.getByLabel("Password").fill(ADMIN.password);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("cell", { name: "web app", exact: true }).waitFor();
    assert.equal(await page.getByText(secret).count(), 0, "the secret is never shown again");

    const sent = await fetch(tern.base + "/v1/messages", {
      method: "POST",
      headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
      body: JSON.stringify({
        from: "Acme <hello@acme.example>",
        to: ["jane@example.org"],
        subject: "Your receipt",
        text: "Thanks for your order.",
        html:
          '<head><link rel="dns-prefetch" href="//tracker.example.invalid">' +
          '<meta http-equiv="refresh" content="0;url=https://tracker.example.invalid/"></head>' +
          '<h1>Thanks!</h1><p>Your order is on its way.</p><img src="https://images.example.invalid/logo.png" alt="logo">',
        tag: "receipt",
      }),
    });
    assert.equal(sent.status, 202);
    state.message = (await sent.json()).id;
    // Something else, to have a list to search in.
    await fetch(tern.base + "/v1/messages", {
      method: "POST",
      headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
      body: JSON.stringify({ from: "hello@acme.example", to: ["bob@example.net"], subject: "Welcome", text: "Hi" }),
    });
  });

  test("finds the message by recipient and opens it", async () => {
    await nav(page, "Messages");
    await page.getByRole("link", { name: "Welcome" }).waitFor();
    await page.getByLabel("Recipient").fill("jane@example.org");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("link", { name: "Welcome" }).waitFor({ state: "detached" });
    await page.getByRole("link", { name: "Your receipt" }).waitFor();
    await snap(page, "messages");
    await page.getByRole("link", { name: "Your receipt" }).click();
    await page.getByRole("heading", { name: "Your receipt", level: 1 }).waitFor();
    assert.ok(page.url().endsWith(`/messages/${state.message}`));
    const timeline = page.getByRole("list", { name: "Events, oldest first" });
    await timeline.getByText("held").first().waitFor();
    const frame = page.locator('iframe[title="HTML preview of the message"]');
    assert.equal(await frame.getAttribute("sandbox"), "");
    const srcdoc = await frame.getAttribute("srcdoc");
    assert.match(srcdoc, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:;/);
    assert.doesNotMatch(srcdoc, /dns-prefetch|refresh/, "what fetches or navigates outside the CSP is stripped");
    await page
      .frameLocator('iframe[title="HTML preview of the message"]')
      .getByText("Your order is on its way.")
      .waitFor();
    await page.getByText("1 remote image is blocked").waitFor();
    await page.getByRole("button", { name: "Show source" }).click();
    await page.getByTestId("source").getByText("DKIM-Signature", { exact: false }).waitFor();
    await snap(page, "message");
    await frame.scrollIntoViewIfNeeded();
    await frame.screenshot({ path: join(OUTPUT, "message-preview.png") });
  });

  test("a message received for a route shows its envelope and sender checks", async () => {
    await nav(page, "Inbound routes");
    await page.getByText("No inbound routes yet.").waitFor();
    await page.getByLabel("Address", { exact: true }).fill("support@acme.example");
    await page.getByLabel("Action").selectOption("hold");
    await page.getByRole("button", { name: "Add route" }).click();
    await page.getByRole("heading", { name: "support@acme.example" }).waitFor();
    await snap(page, "routes");
    execFileSync(
      "swaks",
      [
        "--server",
        `127.0.0.1:${tern.smtpPort}`,
        "--helo",
        "client.sender.example",
        "--from",
        "alice@sender.example",
        "--to",
        "support@acme.example",
        "--header",
        "Subject: Help with my order",
        "--body",
        "My order is late.",
      ],
      { stdio: "pipe" },
    );
    await nav(page, "Messages");
    await page.getByLabel("Direction").selectOption("incoming");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("link", { name: "Help with my order" }).click();
    await page.getByRole("heading", { name: "Received" }).waitFor();
    await page.getByText("alice@sender.example").first().waitFor();
    const checks = page.getByRole("region", { name: "Sender checks" });
    await checks.getByRole("rowheader", { name: "SPF (MAIL FROM)" }).waitFor();
    await checks.getByRole("rowheader", { name: "DMARC" }).waitFor();
    await page.getByRole("button", { name: "Text", exact: true }).click();
    await page.getByText("My order is late.").waitFor();
    await snap(page, "message-received");
  });

  test("the overview shows the day's numbers and the queue", async () => {
    await nav(page, "Overview");
    const accepted = page.locator(".tile", { hasText: "Accepted" }).locator(".tile-value");
    await accepted.waitFor();
    assert.ok(Number(await accepted.textContent()) >= 2, "the two messages sent today");
    await snap(page, "overview");
  });

  test("adds a webhook endpoint, sends it a test event and shows the attempt", async () => {
    const received = [];
    const receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        received.push({ headers: req.headers, body: JSON.parse(body) });
        res.writeHead(204).end();
      });
    });
    await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${receiver.address().port}/hooks`;
      await nav(page, "Webhooks");
      await page.getByText("No webhook endpoints yet.").waitFor();
      await page.getByLabel("URL").fill(url);
      await page.getByLabel("Description").fill("Order system");
      await page.getByRole("checkbox", { name: "message.bounced" }).check();
      await page.getByRole("button", { name: "Add endpoint" }).click();
      const secret = (await page.getByTestId("secret").textContent()).trim();
      assert.match(secret, /^whsec_/);
      await page.getByRole("button", { name: "I have copied it" }).click();
      await page.getByRole("link", { name: url }).click();
      await page.getByRole("heading", { name: "Order system", level: 1 }).waitFor();
      await page.getByText("Nothing delivered yet.").waitFor();
      await page.getByRole("button", { name: "Send a test event" }).click();
      await page.getByText("Test event: HTTP 204").waitFor();
      await page.getByRole("table").getByText("webhook.test").waitFor();
      assert.equal(received.length, 1);
      assert.equal(received[0].body.type, "webhook.test");
      assert.match(received[0].headers["webhook-signature"], /^v1,/);
      await snap(page, "webhook");
    } finally {
      receiver.close();
    }
  });

  test("keeps the suppression list: add, search, import a CSV, remove", async () => {
    await nav(page, "Suppressions");
    await page.getByText("The suppression list is empty.").waitFor();
    await page.getByLabel("Address", { exact: true }).fill("noreply@example.org");
    await page.getByLabel("Note").fill("asked by phone");
    await page.getByRole("button", { name: "Suppress" }).click();
    await page.getByRole("cell", { name: "noreply@example.org", exact: true }).waitFor();
    await page.getByLabel("CSV file", { exact: true }).setInputFiles({
      name: "bounces.csv",
      mimeType: "text/csv",
      buffer: Buffer.from(
        'address,reason,detail\r\nann@example.org,hard_bounce,"550 5.1.1 no, such user"\r\nben@example.org\r\n',
      ),
    });
    await page.getByText("Imported 2 of 2 addresses.").waitFor();
    await page.getByRole("cell", { name: "ann@example.org", exact: true }).waitFor();
    await page.getByRole("cell", { name: "550 5.1.1 no, such user" }).waitFor();
    await page.getByLabel("CSV file", { exact: true }).setInputFiles({
      name: "bad.csv",
      mimeType: "text/csv",
      buffer: Buffer.from("good@example.org\nnot an address\n"),
    });
    await page.getByRole("alert").getByText("entries[1]", { exact: false }).waitFor();
    await page.getByLabel("Address contains").fill("ann@");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("cell", { name: "noreply@example.org", exact: true }).waitFor({ state: "detached" });
    await page.getByRole("button", { name: "Remove ann@example.org" }).click();
    await page.getByText("No suppression matches.").waitFor();
    const admin = await tern.as(ADMIN);
    const left = await admin("GET", `/v1/servers/${state.server}/suppressions`);
    assert.deepEqual(left.body.data.map((s) => s.address).sort(), ["ben@example.org", "noreply@example.org"]);
  });

  test("the other pages render for an administrator", async () => {
    for (const [label, file, heading] of [
      ["Suppressions", "suppressions", "Suppressions"],
      ["Settings", "settings", "Settings"],
    ]) {
      await nav(page, label);
      await page.getByRole("heading", { name: heading, level: 1 }).waitFor();
      await snap(page, file);
    }
    await page.getByRole("link", { name: "Acme" }).first().click();
    await page.getByLabel("Member email").fill(VIEWER.email);
    await page.getByLabel("Role", { exact: true }).selectOption("viewer");
    await page.getByRole("button", { name: "Add member" }).click();
    await page.getByRole("cell", { name: VIEWER.email, exact: true }).waitFor();
    await snap(page, "organization");
  });

  test("a viewer sees no buttons that change anything, and the API refuses them", async () => {
    // The viewer's system prefers dark: the dashboard follows it.
    const viewer = await newPage(VIEWER, "dark");
    await viewer.getByRole("link", { name: "Acme" }).click();
    await viewer.getByRole("link", { name: "Transactional" }).waitFor();
    assert.equal(await viewer.getByRole("button", { name: "Create server" }).count(), 0);
    assert.equal(await viewer.getByRole("button", { name: "Add member" }).count(), 0);
    await viewer.getByRole("link", { name: "Transactional" }).click();
    await viewer.getByText("You are a viewer here").waitFor();
    const background = await viewer.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    assert.equal(background, "rgb(13, 17, 23)", "dark colours");
    await viewer.locator(".tile", { hasText: "Accepted" }).waitFor();
    await snap(viewer, "overview-dark-viewer");
    for (const [label, forbidden] of [
      ["Domains", ["Add domain", "Check now", "Remove"]],
      ["API keys", ["Create key", "Revoke web app", "Rename web app"]],
      ["Webhooks", ["Add endpoint"]],
      ["Inbound routes", ["Add route"]],
      ["Suppressions", ["Suppress", "Remove noreply@example.org"]],
      ["Settings", ["Save", "Delete server"]],
    ]) {
      await nav(viewer, label);
      await viewer.getByRole("heading", { level: 1 }).first().waitFor();
      await viewer.waitForLoadState("networkidle");
      for (const name of forbidden) {
        assert.equal(await viewer.getByRole("button", { name, exact: true }).count(), 0, `${label}: ${name}`);
      }
    }
    await nav(viewer, "Webhooks");
    await viewer.getByRole("link", { name: /^http:\/\/127\.0\.0\.1/ }).click();
    await viewer.getByRole("heading", { name: "Delivery log" }).waitFor();
    await viewer.getByText("webhook.test").first().waitFor();
    for (const name of ["Send a test event", "Turn off", "Rotate the signing secret", "Delete endpoint", "Replay"]) {
      assert.equal(await viewer.getByRole("button", { name, exact: true }).count(), 0, `webhook: ${name}`);
    }
    assert.equal(await viewer.getByRole("button", { name: /^Retry/ }).count(), 0, "webhook: retry");
    const api = await tern.as(VIEWER);
    const key = await api("POST", `/v1/servers/${state.server}/api-keys`, { name: "sneaky" });
    assert.equal(key.status, 403);
    assert.equal(key.body.error.code, "insufficient_role");
    const domain = await api("POST", `/v1/servers/${state.server}/domains`, { name: "sneaky.example" });
    assert.equal(domain.status, 403);
    await viewer.context().close();
  });

  test("a second organization's data never appears", async () => {
    await page.goto(tern.base + "/");
    await page.getByLabel("Email").fill(ADMIN.email);
    await page.getByLabel("Password").fill(ADMIN.password);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("link", { name: "Acme" }).waitFor();
    assert.equal(await page.getByText("Globex").count(), 0);
    await page.goto(`${tern.base}/servers/${state.otherServer}/messages`);
    await page.getByLabel("Email").fill(ADMIN.email);
    await page.getByLabel("Password").fill(ADMIN.password);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("alert").getByText("not found", { exact: false }).waitFor();
    assert.equal(await page.getByText("Globex mail").count(), 0);

    const other = await newPage(OTHER);
    await other.getByRole("link", { name: "Globex" }).waitFor();
    assert.equal(await other.getByText("Acme").count(), 0);
    await other.goto(`${tern.base}/servers/${state.server}/messages/${state.message}`);
    await other.getByLabel("Email").fill(OTHER.email);
    await other.getByLabel("Password").fill(OTHER.password);
    await other.getByRole("button", { name: "Log in" }).click();
    await other.getByRole("alert").waitFor();
    assert.equal(await other.getByText("Your receipt").count(), 0);
    await other.context().close();
  });
});
