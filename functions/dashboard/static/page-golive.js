import { api } from "./api.js";
import { h } from "./dom.js";
import { fmtDate } from "./format.js";
import { route } from "./router.js";
import { badge, card, field, modeBadge, notice, pageHead, showError, stat, statusKind, table, toast } from "./ui.js";

export async function golive() {
  const g = await api("GET", "/v1/go-live");
  const note = h("textarea", { id: "review-note", maxlength: 500, placeholder: "Anything the reviewer should know (optional)" });
  const err = h("div", { hidden: true });
  const request = h("button", {
    type: "button", class: "btn btn-primary", id: "request-review", text: "Request review",
    disabled: g.status === "in_review" || g.status === "approved",
    onclick: async () => {
      request.disabled = true;
      try { const r = await api("POST", "/v1/go-live/reviews", { body: { note: note.value.trim() || null } }); toast(`Review ${r.id} requested`); route(); } catch (e) { showError(e, err); request.disabled = false; }
    },
  });
  const fill = h("div", { class: "score-fill" }); fill.style.width = `${g.score}%`;
  const latest = g.latest_review;
  return h("div", {}, pageHead("Go-live readiness", "Live payments need an approved review. The checklist is evaluated from your account's own records."),
    g.live_enabled ? notice("ok", "Live payments are enabled for this account.") : notice("warn", "Live keys cannot create payments until a review is approved (403 LIVE_MODE_NOT_ENABLED)."),
    h("div", { class: "grid grid-4 stack" }, stat("Status", g.status.replace(/_/g, " "), null, "golive-status"),
      h("div", { class: "stat", dataset: { stat: "score" } }, h("div", { class: "stat-label", text: "Score" }), h("div", { class: "score" }, h("div", { class: "stat-value", text: `${g.score}%` }), h("div", { class: "score-bar" }, fill))),
      stat("Blocking issues", g.blocking_issues.length ? String(g.blocking_issues.length) : "none"),
      stat("Latest review", latest ? latest.status : "none", latest ? fmtDate(latest.requested_at) : null, "latest-review")),
    card("Checklist", table([
      { label: "Item", render: (c) => h("strong", { text: c.name }) },
      { label: "Status", render: (c) => badge(c.status, statusKind(c.status)) },
      { label: "Mode", render: (c) => modeBadge(c.mode) },
      { label: "Evidence", render: (c) => c.evidence_id ? h("code", { class: "small", text: c.evidence_id }) : "—" },
      { label: "Detail", render: (c) => c.detail },
    ], g.checks, { class: "checklist", rowData: (c) => ({ item: c.id, status: c.status }) })),
    g.live_enabled ? null : card("Request a review", [
      g.blocking_issues.length ? notice("warn", `${g.blocking_issues.length} item(s) still fail; the reviewer will see them. Fix them first for a quicker approval.`) : notice("ok", "Every item passes: ready for approval."),
      h("div", { class: "form-grid" }, field("Note for the reviewer", note, "full")), err,
      h("div", { class: "form-actions" }, request, g.status === "in_review" ? h("span", { class: "muted", text: "A review is waiting for an operator." }) : null)]),
    card("Go-live reviews", table([
      { label: "Status", render: (r) => badge(r.status, statusKind(r.status)) },
      { label: "Readiness", render: (r) => r.readiness.replace(/_/g, " ") },
      { label: "Score", num: true, render: (r) => `${r.score}%` },
      { label: "Requested", nowrap: true, render: (r) => fmtDate(r.requested_at) },
      { label: "Decided", nowrap: true, render: (r) => r.decided_at ? fmtDate(r.decided_at) : "—" },
      { label: "Reason", render: (r) => r.reason || "—" },
    ], g.reviews, { empty: "No review requested yet.", class: "reviews" })));
}
