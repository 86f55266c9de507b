/** A table node. */

import { h, replace } from "../dom.js";

export function renderTable(el) {
  replace(el, h("p", {}, "Table"));
  return null;
}
