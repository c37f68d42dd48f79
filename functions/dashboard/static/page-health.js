import { api } from "./api.js";
import { h } from "./dom.js";
import { fmtNum } from "./format.js";
import { badge, card, pageHead, stat, statusKind, table } from "./ui.js";

export async function health() {
  const g = await api("GET", "/v1/credential-guards");
  return h("div", {}, pageHead("Credential guards", "Rules every write of an API key or webhook secret passes, and an audit of older rows that break them."),
    h("div", { class: "grid grid-4 stack" }, stat("Healthy", g.healthy ? "Yes" : "No", null, "healthy"), stat("Installed", `${g.installed} / ${g.total}`),
      stat("Legacy issues", fmtNum(g.legacy_issues)), stat("Blocking rules", fmtNum(g.rules.filter((r) => r.enforcement === "block").length))),
    card("Credential database guards", table([
      { label: "Rule", render: (r) => h("div", {}, h("code", { text: r.name }), h("div", { class: "small muted", text: r.description })) },
      { label: "Table", render: (r) => r.table }, { label: "Type", render: (r) => r.type },
      { label: "Status", render: (r) => badge(r.status, statusKind(r.status)) },
      { label: "Enforcement", render: (r) => badge(r.enforcement, r.enforcement === "block" ? "info" : "warn") },
      { label: "Legacy rows", num: true, render: (r) => fmtNum(r.legacy_issues) },
    ], g.rules)),
    card("Credential guard legacy audit", table([
      { label: "Rule", render: (i) => h("code", { text: i.rule }) },
      { label: "Row", render: (i) => `${i.row.kind} ${i.row.id || ""} ${i.row.prefix ? i.row.prefix + "…" + i.row.last4 : ""}` },
      { label: "Problem", render: (i) => i.problem },
      { label: "Blocks future", render: (i) => i.enforcement === "block" ? "yes" : "no" },
    ], g.legacy, { empty: "Plaintext credential audit: 0 rows. Nothing to fix." })));
}
