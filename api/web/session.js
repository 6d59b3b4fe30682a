// Browser sessions for switchyard's own pages. The key or display token typed into the
// sign-in form is posted once to /web/session and then forgotten: the session lives in an
// HttpOnly cookie the page cannot read, and the CSRF token only in this script's memory.
// Nothing is written to localStorage or sessionStorage.
"use strict";

const SY = (() => {
  let session = null;

  async function readJson(response) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }

  function failure(status, body) {
    const message = body && body.error && body.error.message;
    return message || `the server answered ${status}`;
  }

  // Who the session is; null when there is none (it ended, or never began: 401); undefined
  // when the server cannot say now (down, restarting, overloaded): ask again later, and
  // do not send a wall screen back to its sign-in form for that.
  async function whoAmI() {
    let r;
    try {
      r = await fetch("/web/session", { credentials: "same-origin", cache: "no-store" });
    } catch {
      return undefined;
    }
    if (r.status === 200) {
      session = await readJson(r);
      return session;
    }
    if (r.status === 401) {
      session = null;
      return null;
    }
    return undefined;
  }

  async function signIn(key) {
    const r = await fetch("/web/session", {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ key }),
    });
    const body = await readJson(r);
    if (r.status === 201) {
      session = body;
      return { ok: true, session };
    }
    return { ok: false, message: failure(r.status, body) };
  }

  async function signOut() {
    if (session) {
      await fetch("/web/session", {
        method: "DELETE",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": session.csrf_token },
      }).catch(() => null);
    }
    session = null;
  }

  // A JSON request with the session's cookie (and CSRF token on writes): { status, body }.
  async function api(method, path, body) {
    const headers = {};
    if (method !== "GET" && method !== "HEAD" && session) {
      headers["X-CSRF-Token"] = session.csrf_token;
    }
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
    }
    const r = await fetch(path, {
      method,
      credentials: "same-origin",
      cache: "no-store",
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, body: await readJson(r) };
  }

  // Shows the sign-in form in `section`; resolves with the session once signed in.
  function signInWith(section) {
    const form = section.querySelector("form");
    const input = form.querySelector("input[name=key]");
    const error = form.querySelector(".error");
    section.hidden = false;
    input.focus();
    return new Promise((resolve) => {
      const submit = async (event) => {
        event.preventDefault();
        error.textContent = "";
        const button = form.querySelector("button[type=submit]");
        button.disabled = true;
        try {
          const result = await signIn(input.value.trim());
          if (result.ok) {
            input.value = "";
            section.hidden = true;
            form.removeEventListener("submit", submit);
            resolve(result.session);
          } else {
            error.textContent = result.message;
          }
        } catch (e) {
          error.textContent = `could not reach the server (${e.message})`;
        } finally {
          button.disabled = false;
        }
      };
      form.addEventListener("submit", submit);
    });
  }

  // The signed-in session: the current one, or the sign-in form's. While the server cannot
  // answer, it asks again every few seconds.
  async function session_or_sign_in(section) {
    for (;;) {
      const s = await whoAmI();
      if (s) return s;
      if (s === null) return signInWith(section);
      await new Promise((resolve) => setTimeout(resolve, 2000 + Math.random() * 2000));
    }
  }

  function describe(s) {
    if (!s) return "";
    if (s.kind === "display") return "display screen";
    return s.agent_id != null ? `${s.role} · agent ${s.agent_id}` : s.role;
  }

  return {
    whoAmI,
    signIn,
    signOut,
    api,
    signInWith,
    sessionOrSignIn: session_or_sign_in,
    describe,
    get session() {
      return session;
    },
  };
})();
