import { api } from "./api.js";
import { h } from "./dom.js";
import { route } from "./router.js";
import { armed, badge, card, notice, pageHead, statusKind, table, toast } from "./ui.js";

export async function versions() {
  const v = await api("GET", "/v1/api-versions");
  const order = v.versions.map((x) => x.version);
  return h("div", {}, pageHead("API versions", `Your account is pinned to ${v.pinned}. A request can pick another with the Tahsil-Version header.`),
    v.upgrade_available ? notice("info", `${v.latest} is available.`) : null,
    card(null, table([
      { label: "Version", render: (x) => h("div", {}, h("code", { text: x.version }), h("div", { class: "small muted", text: x.summary || "" })) },
      { label: "Status", render: (x) => badge(x.status, statusKind(x.status)) },
      { label: "Released", render: (x) => x.released || "—" },
      { label: "Support", render: (x) => x.current ? badge("current", "ok") : "supported" },
      { label: "Changes", render: (x) => x.changes.map((c) => h("div", { class: "small" }, h("code", { text: c.name }), ` ${c.description}`)) },
      { label: "", render: (x) => !x.current && order.indexOf(x.version) < order.indexOf(v.pinned) ? armed(`Upgrade to ${x.version}`, "Confirm upgrade", async () => {
        await api("POST", "/v1/account/api-version", { body: { api_version: x.version } }); toast(`Pinned to ${x.version}`); route();
      }) : null },
    ], v.versions)));
}
