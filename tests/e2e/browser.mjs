// Shared helpers for the portal's browser tests: Debian's Chromium driven by playwright-core (installed
// in frontend/node_modules; the Playwright browser download is not used). Scenarios import this, read
// their parameters from the environment, and print one JSON line with what they saw for pytest to check.
import { createRequire } from "node:module";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, "..", "..");
const require = createRequire(path.join(ROOT, "frontend", "package.json"));
const { chromium } = require("playwright-core");

export const CHROMIUM = process.env.DBPILOT_CHROMIUM ?? "/usr/bin/chromium";
export const OUTPUT = process.env.E2E_OUTPUT ?? path.join(ROOT, "tests", "output");

/** A fresh headless Chromium profile; returns { context, close }. */
export async function launch() {
  const profile = mkdtempSync(path.join(tmpdir(), "dbpilot-chromium-"));
  mkdirSync(OUTPUT, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
      "--no-first-run", "--disable-component-update", "--disable-sync",
    ],
  });
  context.setDefaultTimeout(Number(process.env.E2E_TIMEOUT_MS ?? 15000));
  return {
    context,
    async close() {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Collects console errors and uncaught page errors of a page. */
export function watchErrors(page) {
  const errors = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()} (${msg.location().url ?? ""})`);
  });
  page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
  return errors;
}

export async function screenshot(page, name) {
  const file = path.join(OUTPUT, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Signs in through the login form and waits for the clusters page. */
export async function login(page, baseUrl, email, password) {
  await page.goto(`${baseUrl}/login`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Clusters", level: 1 }).waitFor();
}

let stdinLines = null;

/** Asks the pytest side to act (e.g. kill a server): prints {"signal": NAME} and waits for its reply line. */
export async function signal(name) {
  if (!stdinLines) {
    const { createInterface } = await import("node:readline");
    stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  }
  process.stdout.write(`${JSON.stringify({ signal: name })}\n`);
  const { value, done } = await stdinLines.next();
  if (done) throw new Error(`no answer to signal ${name}`);
  return value.trim();
}

export function report(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.stdin.destroy(); // a scenario that waited for signals must not wait for stdin to close
}
