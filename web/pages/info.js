/** Metadata / Detail / Download tabs. */

import { h, replace } from "../dom.js";

export function renderInfo(tab, el) {
  replace(el, h("p", {}, tab));
  return null;
}
