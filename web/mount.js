/**
 * Mounting web-views' modules (array viewer, plots) by dynamic import. They are separate so
 * the frame never waits for them, and a missing or failing viewer is said in words while the
 * rest of the page keeps working. (Kept out of app.js: importing app.js would run it twice.)
 */

import { h, replace } from "./dom.js";

/**
 * import(module)[fn](el, ctx) -> its dispose function, or null after saying what failed.
 * `module` is relative to web/ (this file's folder, e.g. "./views/array.js"), so that it
 * resolves under the page's versioned /static/v-<version>/ URL and comes from the cache.
 */
export async function mountView(el, module, fn, ctx) {
  let view;
  try {
    view = await import(module);
  } catch (err) {
    console.error(`viewer ${module} did not load`, err);
    replace(el, h("p", { class: "muted", dataset: { testid: "viewer-missing" } }, "viewer not available"));
    return null;
  }
  try {
    return (await view[fn](el, ctx)) ?? null;
  } catch (err) {
    console.error(`viewer ${module} failed`, err);
    replace(el, h("p", { class: "error", dataset: { testid: "error" } }, `The viewer failed: ${err.message}`));
    return null;
  }
}
