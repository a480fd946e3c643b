// The lag chart on a real cluster: a replica's SQL thread is stopped while the primary takes writes, and the
// Metrics tab's lag curve for that replica rises live (no reload). The pytest side stops and restarts the SQL
// thread and runs the writes when asked (signal()). Parameters come from the environment (test_portal_metrics.py).
import { launch, login, report, screenshot, signal, watchErrors } from "./browser.mjs";

const base = process.env.PORTAL_URL;
const replica = process.env.REPLICA;
const lagChart = 'figure.chart[data-series="lag"]';
const result = { steps: [], errors: [], lags: [] };
const { context, close } = await launch();
const latestLag = async (page) => {
  const raw = await page.locator(`${lagChart} .chart-latest[data-server="${replica}"]`).getAttribute("data-value");
  return raw === "" || raw === null ? null : Number(raw);
};
try {
  const page = await context.newPage();
  result.errors = watchErrors(page);
  await login(page, base, process.env.EMAIL, process.env.PASSWORD);
  await page.goto(`${base}/clusters/${process.env.CLUSTER_ID}/metrics`);
  await page.locator(`${lagChart} canvas`).waitFor({ timeout: 20000 });
  await page.waitForFunction((sel) => Number(document.querySelector(sel)?.getAttribute("data-points") ?? 0) >= 3, lagChart, { timeout: 20000 });
  await page.evaluate(() => { window.__samePage = true; });
  result.steps.push({ name: "healthy", lag: await latestLag(page), points: Number(await page.locator(lagChart).getAttribute("data-points")) });
  result.screenshots = [await screenshot(page, "portal-metrics-healthy")];

  await signal("stop_sql_under_writes");
  const started = Date.now();
  while (Date.now() - started < 12000) {
    await page.waitForTimeout(1000);
    result.lags.push({ at: (Date.now() - started) / 1000, lag: await latestLag(page) });
  }
  result.steps.push({
    name: "lagging",
    same_page: await page.evaluate(() => window.__samePage === true),
    points: Number(await page.locator(lagChart).getAttribute("data-points")),
  });
  result.screenshots.push(await screenshot(page, "portal-metrics-lag-rising"));
  await signal("start_sql");
} catch (exc) {
  result.failure = String(exc?.stack ?? exc);
} finally {
  await close();
}
report(result);
