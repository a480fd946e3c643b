// The live topology on a real cluster: the portal shows a replica going down and coming back, driven by
// the monitoring worker's websocket messages, without a reload. The pytest side kills and restarts the
// replica when asked (signal()). Parameters come from the environment (see test_portal_live.py).
import { launch, login, report, screenshot, signal, watchErrors } from "./browser.mjs";

const base = process.env.PORTAL_URL;
const replica = process.env.REPLICA;
const node = (status) => `svg.topology g.topo-node[data-address="${replica}"]${status ? `[data-status="${status}"]` : ""}`;
const result = { steps: [], errors: [] };
const { context, close } = await launch();
try {
  const page = await context.newPage();
  result.errors = watchErrors(page);
  await login(page, base, process.env.EMAIL, process.env.PASSWORD);
  await page.goto(`${base}/clusters/${process.env.CLUSTER_ID}`);
  await page.locator(".live-indicator.live-open").waitFor();
  await page.locator('svg.topology g.topo-node[data-status="up"]').nth(2).waitFor({ timeout: 20000 });
  result.steps.push({ name: "healthy", primary: await page.locator("svg.topology").getAttribute("data-primary") });
  await page.evaluate(() => { window.__samePage = true; });
  result.screenshots = [await screenshot(page, "portal-live-healthy")];

  await signal("kill_replica");
  const killed = Date.now();
  await page.locator(node("down")).waitFor({ timeout: 20000 });
  result.steps.push({
    name: "replica_down",
    seconds: (Date.now() - killed) / 1000,
    same_page: await page.evaluate(() => window.__samePage === true),
    findings: await page.locator("section.panel", { hasText: "Findings" }).innerText(),
    events: await page.locator("table.events tbody tr").allInnerTexts(),
  });
  result.screenshots.push(await screenshot(page, "portal-live-replica-down"));

  await signal("start_replica");
  const started = Date.now();
  await page.locator(node("up")).waitFor({ timeout: 30000 });
  result.steps.push({ name: "replica_back", seconds: (Date.now() - started) / 1000, same_page: await page.evaluate(() => window.__samePage === true) });
  result.screenshots.push(await screenshot(page, "portal-live-replica-back"));
} catch (exc) {
  result.failure = String(exc?.stack ?? exc);
} finally {
  await close();
}
report(result);
