/** An array node: web-views' viewer (`views/array.js`) in the View tab. */

import { h, replace } from "../dom.js";
import { mountView } from "../mount.js";

export function renderArrayPage(el, ctx) {
  const mount = h("div", { class: "viewer" });
  replace(el, mount);
  return mountView(mount, "./views/array.js", "renderArray", ctx);
}
