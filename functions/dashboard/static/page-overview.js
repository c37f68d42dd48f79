import { api } from "./api.js";
import { barChart, legend, lineChart, statusChart } from "./charts.js";
import { h } from "./dom.js";
import { fmtDate, fmtMs, fmtNum, fmtPct, short } from "./format.js";
import { route } from "./router.js";
import { state, STORE } from "./state.js";
import { badge, card, notice, pageHead, select, stat, statusKind, table } from "./ui.js";

const RANGES = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };

// The go-live card leads with what the account can do (the status); the checklist is the detail. An account
// approved with --force may still fail items: "0% / approved" read as a contradiction.
function goLiveStat(g) {
  const passed = (g.checks || []).filter((c) => c.status === "passed").length, total = (g.checks || []).length;
  const checklist = `checklist ${passed} of ${total} passed (${g.score}%)`;
  const detail = g.status === "approved" ? `live payments enabled · ${checklist}` : checklist;
  return stat("Go-live", g.status.replace(/_/g, " "), detail, "golive");
}

export async function overview() {
  const range = STORE.getItem("tahsil.range") || "24h";
  const to = new Date(), from = new Date(to.getTime() - RANGES[range] * 1000);
  const [o, golive] = await Promise.all([
    api("GET", "/v1/overview", { query: { from: from.toISOString(), to: to.toISOString() } }),
    api("GET", "/v1/go-live").catch(() => null),
  ]);
  const rangeSel = select(Object.keys(RANGES).map((k) => [k, { "1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days" }[k]]), range,
    { id: "overview-range", onchange: (ev) => { STORE.setItem("tahsil.range", ev.target.value); route(); } });
  const r = o.requests, d = o.deliveries, lat = o.latency_ms, sig = o.signatures;
  const latest = d.latest_response;
  const seconds = o.window.bucket_seconds;
  const view = h("div", {},
    pageHead("Overview", `Your integration in ${state.mode} mode, from request counters and webhook deliveries.`,
      [rangeSel, h("span", { class: "muted small", text: `Updated ${fmtDate(o.updated_at, true)}` })]),
    o.limits.truncated ? notice("warn", `Busy window: webhook deliveries are counted from at most ${fmtNum(o.limits.max_delivery_rows)} delivery rows per view.`) : null,
    h("div", { class: "grid grid-4 stack" },
      stat("Total requests", fmtNum(r.total), `${fmtNum(r.succeeded)} succeeded`, "total"),
      stat("Success rate", fmtPct(r.success_rate), "status below 400", "success"),
      stat("Average latency", fmtMs(lat.avg), `p95 ${fmtMs(lat.p95)}`, "latency"),
      stat("Error rate", fmtPct(r.error_rate), `${fmtNum(r.client_errors)} 4xx · ${fmtNum(r.server_errors)} 5xx · ${fmtNum(r.rate_limited)} rate limited`, "errors"),
      stat("Signed requests", `${fmtNum(sig.passed)} passed`, `${fmtNum(sig.denied)} denied or failed`, "signatures"),
      stat("Event deliveries", `${fmtNum(d.delivered)} delivered`, `${fmtNum(d.attempts)} attempts · ${fmtNum(d.failed)} failed · ${fmtNum(d.retrying + d.pending)} in flight`, "deliveries"),
      stat("Latest webhook response", latest ? (latest.status_code ? String(latest.status_code) : (latest.error_class || "no answer")) : "—",
        latest ? `${fmtMs(latest.latency_ms)} · ${latest.event_type || ""} · ${fmtDate(latest.at)}` : "no deliveries in this window", "webhook"),
      golive ? goLiveStat(golive) : stat("Go-live", "—", "", "golive")),
    h("div", { class: "grid grid-2 stack" },
      card("Requests over time", [barChart("requests", o.buckets, seconds), legend([["c-ok", "succeeded"], ["c-bad", "errors (4xx, 5xx)"]])]),
      card("HTTP status codes", statusChart(o.status_codes)),
      card("Success rate", lineChart("success", "Success rate over time", o.buckets, seconds, [{ field: "success_rate", name: "success", color: "#14b8a6" }], 100, (v) => `${Math.round(v)}%`)),
      card("Latency", [lineChart("latency", "Latency over time", o.buckets, seconds,
        [{ field: "avg_latency_ms", name: "average", color: "#2563eb" }, { field: "p95_latency_ms", name: "p95", color: "#f59e0b" }], null, (v) => `${Math.round(v)} ms`),
      legend([["c-avg", "average"], ["c-p95", "95th percentile"]])])),
    h("div", { class: "grid grid-2 stack" },
      card("Request signing", sig.latest ? h("dl", { class: "kv" },
        h("dt", { text: "Latest request" }), h("dd", {}, h("code", { text: sig.latest.path })),
        h("dt", { text: "Status" }), h("dd", {}, badge(sig.latest.outcome, statusKind(sig.latest.outcome)), sig.latest.reason ? ` ${sig.latest.reason}` : ""),
        h("dt", { text: "Clock drift" }), h("dd", { text: sig.latest.drift_s === null || sig.latest.drift_s === undefined ? "—" : `${sig.latest.drift_s} s` }),
        h("dt", { text: "When" }), h("dd", { text: fmtDate(sig.latest.at) })) : h("p", { class: "muted", text: "No signed requests in this window. Keys can require signatures (API keys → Require signing)." })),
      card("Webhook endpoints", table([
        { label: "Endpoint", render: (e) => h("div", {}, h("code", { title: e.url, text: short(e.url, 40) }), h("div", { class: "small muted", text: e.endpoint_id })) },
        { label: "Delivered", num: true, nowrap: true, render: (e) => `${fmtNum(e.delivered)} of ${fmtNum(e.total)}` },
        { label: "Failed", num: true, render: (e) => fmtNum(e.failed) },
      ], d.endpoints, { empty: "No deliveries in this window." }))));
  return view;
}
