/** The tab bar every node has: View / Metadata / Detail / Download, each its own URL. */

import { h } from "../dom.js";
import { href } from "../router.js";

export const TABS = ["view", "metadata", "detail", "download"];
const LABELS = { view: "View", metadata: "Metadata", detail: "Detail", download: "Download" };

/** Links, not buttons: a tab can be opened in a new window or shared. */
export function renderTabs(ctx, active) {
  return h(
    "nav",
    { class: "tabs", "aria-label": "Views of this node" },
    TABS.map((tab) =>
      h(
        "a",
        {
          href: href(ctx.path, tab === "view" ? {} : { tab }),
          class: tab === active ? "tab active" : "tab",
          "aria-current": tab === active ? "page" : null,
          dataset: { testid: `tab-${tab}` },
        },
        LABELS[tab],
      ),
    ),
  );
}
