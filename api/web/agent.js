// The agent page: for now its sign-in (an agent key exchanged for a session cookie) and
// sign-out. The panel itself (state, current call, previews, dispositions) comes later.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  async function start() {
    const s = await SY.sessionOrSignIn($("signin"));
    $("who").textContent = SY.describe(s);
    $("panel").hidden = false;
  }

  $("signout").addEventListener("click", async () => {
    await SY.signOut();
    $("panel").hidden = true;
    start();
  });

  start();
})();
