/** A run: status, start/stop metadata, streams (filled in below). */

import { renderChildren } from "./children.js";

export function renderRun(el, ctx) {
  return renderChildren(el, ctx);
}
