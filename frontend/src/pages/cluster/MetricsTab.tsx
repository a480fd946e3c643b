/**
 * The cluster's charts: replication lag, writes, reads, transactions (GTID) and connections per server over
 * the last hour (tick resolution) or 24 hours (a point a minute), with failovers, switchovers and findings
 * marked on the time axis. While shown, it fetches what is new every 2 s (`since=`), so the curves move live.
 */
import { useEffect, useRef, useState } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { clusters as clustersApi } from "../../api/endpoints";
import type { MetricMark } from "../../api/types";
import { ErrorMessage } from "../../components/ErrorMessage";
import { alignedData, lastTime, latestValues, MARK_COLORS, mergeMetrics, RANGE_SECONDS, type SeriesStore } from "../../lib/metricsSeries";
import { useClusterPage } from "./context";

const CHARTS: { series: string; title: string; unit: string }[] = [
  { series: "lag", title: "Replication lag", unit: "s" },
  { series: "writes_per_s", title: "Writes", unit: "/s" },
  { series: "reads_per_s", title: "Reads", unit: "/s" },
  { series: "gtid_per_s", title: "Transactions (GTID)", unit: "/s" },
  { series: "connections", title: "Connections", unit: "" },
  { series: "sql_running", title: "SQL thread running", unit: "" },
];
const SERIES = CHARTS.map((c) => c.series);
const COLORS = ["#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#5d4037", "#37474f"];
const LIVE_MS = 2000;

function marksPlugin(getMarks: () => MetricMark[]): uPlot.Plugin {
  return {
    hooks: {
      draw: (u: uPlot) => {
        const ctx = u.ctx;
        const { top, height } = u.bbox;
        for (const mark of getMarks()) {
          const x = Math.round(u.valToPos(mark.t, "x", true));
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
          ctx.save();
          ctx.strokeStyle = MARK_COLORS[mark.kind] ?? "#757575";
          ctx.lineWidth = 2 * (window.devicePixelRatio || 1);
          ctx.setLineDash(mark.kind.startsWith("finding") ? [4, 4] : []);
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.restore();
        }
      },
    },
  };
}

function Chart({ store, series, title, unit, width }: { store: SeriesStore; series: string; title: string; unit: string; width: number }) {
  const holder = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const marks = useRef<MetricMark[]>(store.marks);
  marks.current = store.marks;
  const serverKey = store.servers.map((s) => `${s.id}:${s.address}`).join(",");

  useEffect(() => {
    if (!holder.current) return;
    const opts: uPlot.Options = {
      width, height: 180,
      scales: { x: { time: true } },
      series: [{}, ...store.servers.map((s, i) => ({ label: s.address, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false }))],
      axes: [{}, { values: (_u: uPlot, ticks: number[]) => ticks.map((v) => `${v}${unit}`) }],
      legend: { show: true },
      plugins: [marksPlugin(() => marks.current)],
    };
    plot.current = new uPlot(opts, alignedData(store, series) as uPlot.AlignedData, holder.current);
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
    // Rebuilt only when the servers or the size change; data updates go through setData below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [serverKey, width, series, unit]);

  useEffect(() => {
    plot.current?.setData(alignedData(store, series) as uPlot.AlignedData);
  }, [store, series]);

  const latest = latestValues(store, series);
  return (
    <figure className="chart" data-series={series} data-points={store.servers[0]?.t.length ?? 0}>
      <figcaption>
        <strong>{title}</strong>{" "}
        {latest.map((l) => (
          <span key={l.id} className="muted chart-latest" data-server={l.address} data-value={l.value ?? ""}>
            {l.address}: {l.value === null ? "—" : `${Math.round(l.value * 10) / 10}${unit}`}{" "}
          </span>
        ))}
      </figcaption>
      <div ref={holder} />
    </figure>
  );
}

export function MetricsTab() {
  const { clusterId } = useClusterPage();
  const [range, setRange] = useState<"1h" | "24h">("1h");
  const [store, setStore] = useState<SeriesStore | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [width, setWidth] = useState(800);
  const box = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const measure = () => setWidth(Math.max(320, (box.current?.clientWidth ?? 800) - 8));
    measure();
    window.addEventListener("resize", measure);
    return () => window.removeEventListener("resize", measure);
  }, []);

  useEffect(() => {
    let cancelled = false;
    let current: SeriesStore | null = null;
    let timer: ReturnType<typeof setTimeout> | null = null;
    setStore(null);
    const fetchNew = async () => {
      try {
        const since = current ? lastTime(current) : undefined;
        const answer = await clustersApi.metrics(clusterId, range, SERIES, since);
        if (cancelled) return;
        current = mergeMetrics(current, answer, RANGE_SECONDS[range], Date.now() / 1000);
        setStore(current);
        setError(null);
      } catch (exc) {
        if (!cancelled) setError(exc);
      }
      if (!cancelled) timer = setTimeout(fetchNew, range === "1h" ? LIVE_MS : 30_000);
    };
    void fetchNew();
    return () => {
      cancelled = true;
      if (timer) clearTimeout(timer);
    };
  }, [clusterId, range]);

  return (
    <section className="panel metrics" ref={box}>
      <div className="panel-head">
        <h2>Metrics</h2>
        <label className="inline-field">
          Range{" "}
          <select value={range} onChange={(e) => setRange(e.target.value as "1h" | "24h")} aria-label="Range">
            <option value="1h">last hour (every tick)</option>
            <option value="24h">last 24 hours (per minute)</option>
          </select>
        </label>
      </div>
      <ErrorMessage error={error} title="Could not load the metrics." />
      <p className="muted chart-key">
        Marks: <span style={{ color: MARK_COLORS.failover }}>━ failover</span>{" "}
        <span style={{ color: MARK_COLORS.switchover }}>━ switchover</span>{" "}
        <span style={{ color: MARK_COLORS.finding_opened }}>┅ finding opened</span>{" "}
        <span style={{ color: MARK_COLORS.finding_resolved }}>┅ finding resolved</span>
      </p>
      {!store ? (
        <div role="status" className="muted">Loading metrics…</div>
      ) : (
        <>
          {CHARTS.map((c) => (
            <Chart key={c.series} store={store} series={c.series} title={c.title} unit={c.unit} width={width} />
          ))}
          {store.marks.length > 0 && (
            <ul className="chart-marks" aria-label="Marked on the charts">
              {store.marks.slice(-20).map((m) => (
                <li key={`${m.t}-${m.kind}-${m.message}`} data-kind={m.kind}>
                  <span style={{ color: MARK_COLORS[m.kind] ?? "#757575" }}>●</span> {new Date(m.t * 1000).toLocaleTimeString()} {m.message}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}
