// Automatic failover and a switchover seen by a tenant operator in the browser: the pytest side SIGKILLs
// the primary when asked (signal "kill_primary") and reports the finished failover job ("failover_finished");
// the graph must show the promoted server without a reload, and a switchover started from the UI must show
// its steps progressing to ok. Parameters come from the environment (see test_portal_failover.py).
import { launch, login, report, screenshot, signal, watchErrors } from "./browser.mjs";

const base = process.env.PORTAL_URL;
const clusterId = process.env.CLUSTER_ID;
const oldPrimary = process.env.OLD_PRIMARY;
const graph = "svg.topology";
const result = { steps: [], errors: [], screenshots: [] };

/** Waits until the graph's data-primary is a server other than `previous`; returns it. */
async function newPrimary(page, previous, timeout) {
  const handle = await page.waitForFunction(([selector, old]) => {
    const primary = document.querySelector(selector)?.getAttribute("data-primary");
    return primary && primary !== old ? primary : null;
  }, [graph, previous], { timeout, polling: 50 });
  return handle.jsonValue();
}

/** Records every distinct list of step states the page renders (a MutationObserver, so none is missed). */
async function recordSteps(page) {
  await page.evaluate(() => {
    window.__stepSnapshots = [];
    const take = () => {
      const states = [...document.querySelectorAll("ol.steps li[data-step-state]")].map((li) => li.getAttribute("data-step-state"));
      const last = window.__stepSnapshots[window.__stepSnapshots.length - 1];
      if (states.length && (!last || last.join() !== states.join())) window.__stepSnapshots.push(states);
    };
    new MutationObserver(take).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-step-state"] });
    take();
  });
}

const { context, close } = await launch();
let page = null;
try {
  page = await context.newPage();
  result.errors = watchErrors(page);
  await login(page, base, process.env.EMAIL, process.env.PASSWORD);
  const row = page.locator(`tr[data-cluster-id="${clusterId}"]`);
  await row.waitFor();
  result.steps.push({ name: "clusters_list", row: (await row.innerText()).replace(/\s+/g, " ") });
  result.screenshots.push(await screenshot(page, "portal-failover-clusters"));

  await row.getByRole("link", { name: process.env.CLUSTER_NAME }).click();
  await page.locator(".live-indicator.live-open").waitFor();
  await page.locator(`${graph} g.topo-node[data-status="up"]`).nth(2).waitFor({ timeout: 20000 });
  await page.locator(`${graph}[data-primary="${oldPrimary}"]`).waitFor({ timeout: 20000 });
  result.steps.push({
    name: "cluster_page",
    primary: await page.locator(graph).getAttribute("data-primary"),
    role: (await page.locator(".subtitle", { hasText: "your role" }).innerText()).match(/your role: (\w+)/)?.[1],
  });
  await page.evaluate(() => { window.__samePage = true; });

  // The automatic failover.
  await signal("kill_primary");
  const killed = Date.now();
  // During the failover (its pre_failover hook holds the job 2 s before the promotion): the primary drawn down.
  await page.locator(`${graph} g.topo-node[data-address="${oldPrimary}"][data-status="down"]`).waitFor({ timeout: 30000 });
  const running = page.locator("section.panel", { hasText: "Running: failover" });
  result.steps.push({
    name: "failover_running",
    primary: await page.locator(graph).getAttribute("data-primary"),
    job_panel: await running.count() ? await running.innerText() : null,
  });
  result.screenshots.push(await screenshot(page, "portal-failover-during"));
  const shown = await newPrimary(page, oldPrimary, 60000);
  const shownAt = Date.now();
  const job = JSON.parse(await signal("failover_finished"));
  result.steps.push({
    name: "failover_shown",
    primary: shown,
    shown_at_ms: shownAt,
    seconds_after_kill: (shownAt - killed) / 1000,
    job,
    same_page: await page.evaluate(() => window.__samePage === true),
  });
  // Once the job is over its panel goes away: the page then shows the settled topology.
  await page.locator("section.panel", { hasText: "Running: failover" }).waitFor({ state: "hidden", timeout: 15000 });
  result.screenshots.push(await screenshot(page, "portal-failover-after"));

  // The old primary comes back: dbpilot fences it and rejoins it as a replica (a `rejoin` job).
  await signal("restart_old_primary");
  await page.locator(`${graph} g.topo-node[data-status="up"]`).nth(2).waitFor({ timeout: 60000 });
  result.steps.push({ name: "old_primary_back", role: await page.locator(`${graph} g.topo-node[data-address="${oldPrimary}"]`).getAttribute("data-role") });

  // A switchover from the UI to the other survivor; the app navigates to the job's page.
  const switchoverButton = page.getByRole("button", { name: "Switchover…" });
  await switchoverButton.waitFor();
  await page.waitForFunction(() => {  // enabled once no HA job (the rejoin) runs
    const button = [...document.querySelectorAll(".actions-bar button")].find((b) => b.textContent.startsWith("Switchover"));
    return button && !button.disabled;
  }, null, { timeout: 60000 });
  await switchoverButton.click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  const select = dialog.getByLabel("New primary");
  const options = (await select.locator("option").evaluateAll((os) => os.map((o) => o.value))).filter((v) => v && v !== shown && v !== oldPrimary);
  if (options.length !== 1) throw new Error(`expected one switchover candidate besides ${shown}, got ${options}`);
  await select.selectOption(options[0]);
  await recordSteps(page);
  await dialog.getByRole("button", { name: "Start switchover" }).click();
  await page.waitForURL(/\/jobs\/\d+$/);
  const jobId = Number(new URL(page.url()).pathname.split("/").pop());
  await page.locator(".panel-head", { hasText: `switchover job #${jobId}` }).waitFor();
  // The job's badge says when it is over (succeeded, failed, ...); its steps are then final.
  const head = page.locator(".panel-head", { hasText: `switchover job #${jobId}` });
  await head.locator(".badge:not(.state-pending):not(.state-running)").waitFor({ timeout: 60000 });
  const snapshots = await page.evaluate(() => window.__stepSnapshots);
  result.steps.push({
    name: "switchover", candidate: options[0], job_id: jobId, snapshots, final: snapshots[snapshots.length - 1],
    state: (await head.locator(".badge").innerText()).trim(),
  });
  result.screenshots.push(await screenshot(page, "portal-failover-switchover-job"));

  await page.getByRole("link", { name: "Overview" }).click();
  await page.locator(`${graph}[data-primary="${options[0]}"]`).waitFor({ timeout: 15000 });
  result.steps.push({
    name: "after_switchover",
    primary: await page.locator(graph).getAttribute("data-primary"),
    same_page: await page.evaluate(() => window.__samePage === true),
  });
  result.screenshots.push(await screenshot(page, "portal-failover-after-switchover"));
} catch (exc) {
  result.failure = String(exc?.stack ?? exc);
  if (page) {
    result.failure_url = page.url();
    result.failure_steps = await page.evaluate(() => window.__stepSnapshots).catch(() => null);
    result.screenshots.push(await screenshot(page, "portal-failover-failure").catch(() => null));
  }
} finally {
  await close();
}
report(result);
