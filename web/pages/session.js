/**
 * Who is signed in, and Sign in / Sign out. A server with OpenID Connect (`serve
 * --oidc-config`) signs people in through the browser code flow: "Sign in" is a plain link to
 * /api/v1/auth/login?next=<this view>, so the person comes back to what they were looking at.
 * "Sign out" posts /api/v1/auth/logout with the CSRF cookie's value as X-CSRF-Token (the
 * session cookie alone must never be enough to act). A single-user server has nothing to
 * click: its printed ?token= URL made the cookie already.
 */

import { API, getJSON, postJSON } from "../api.js";
import { h, replace } from "../dom.js";

const CSRF_COOKIE = "bluebroker_csrf";

let methodsPromise = null;
/** GET /auth/methods once: `{oidc: {...}}` or `{oidc: null}`. */
export function methods() {
  methodsPromise ??= getJSON(`${API}/auth/methods`).catch(() => ({ oidc: null }));
  return methodsPromise;
}

function cookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(`${name}=`));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
}

/** The sign-in link to come back to the current view, or null without OpenID Connect. */
export async function signInLink(testid = "signin") {
  const { oidc } = await methods();
  if (!oidc) return null;
  const next = location.pathname + location.search;
  return h("a", { class: "button", href: `${oidc.login}?${new URLSearchParams({ next })}`, dataset: { testid } },
    `Sign in${oidc.provider ? ` with ${oidc.provider}` : ""}`);
}

async function signOut(oidc) {
  try {
    await postJSON(oidc.logout, {}, cookie(CSRF_COOKIE));
  } finally {
    location.reload();
  }
}

/** Fill the header's corner: the name and Sign out, or Sign in. */
export async function renderSession(el) {
  const { oidc } = await methods();
  let who = null;
  try {
    who = await getJSON(`${API}/auth/whoami`);
  } catch {
    who = null; // not signed in: the page's own requests say so in words
  }
  const parts = [];
  if (who && who.kind !== "anonymous") {
    parts.push(h("span", { dataset: { testid: "whoami" }, title: `signed in by ${who.via ?? "?"}` }, who.name || who.id));
  }
  if (oidc && who?.via === "session") {
    parts.push(h("button", { type: "button", dataset: { testid: "signout" }, on: { click: () => signOut(oidc) } }, "Sign out"));
  } else if (oidc && (!who || who.kind === "anonymous")) {
    parts.push(await signInLink());
  }
  replace(el, parts);
}
