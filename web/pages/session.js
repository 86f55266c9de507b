/** Who is signed in, and the sign-in / sign-out controls (filled in by the sign-in work). */

export async function renderSession(el) {
  el.textContent = "";
}
