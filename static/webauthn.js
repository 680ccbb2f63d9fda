// breachguard: the browser side of WebAuthn (security keys and passkeys).
// No framework and no inline script (the pages' CSP forbids it). Options come from the
// server as JSON with base64url strings; the credential goes back the same way.
"use strict";

(function () {
  function b64urlToBuffer(value) {
    const pad = "=".repeat((4 - (value.length % 4)) % 4);
    const text = atob((value + pad).replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes.buffer;
  }

  function bufferToB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let text = "";
    for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    if (!response.ok) throw new Error(data.error || say("serverStatus").replace("{status}", String(response.status)));
    return data;
  }

  function creationOptions(json) {
    const o = Object.assign({}, json);
    o.challenge = b64urlToBuffer(json.challenge);
    o.user = Object.assign({}, json.user, { id: b64urlToBuffer(json.user.id) });
    o.excludeCredentials = (json.excludeCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: b64urlToBuffer(c.id) });
    });
    return o;
  }

  function requestOptions(json) {
    const o = Object.assign({}, json);
    o.challenge = b64urlToBuffer(json.challenge);
    o.allowCredentials = (json.allowCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: b64urlToBuffer(c.id) });
    });
    return o;
  }

  function credentialJSON(cred) {
    const r = cred.response;
    const response = { clientDataJSON: bufferToB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = bufferToB64url(r.attestationObject);
      if (r.getTransports) response.transports = r.getTransports();
    }
    if (r.authenticatorData) {
      response.authenticatorData = bufferToB64url(r.authenticatorData);
      response.signature = bufferToB64url(r.signature);
      if (r.userHandle) response.userHandle = bufferToB64url(r.userHandle);
    }
    return {
      id: cred.id,
      rawId: bufferToB64url(cred.rawId),
      type: cred.type,
      response: response,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    };
  }

  // The words come from the page, in its language: data-* attributes on the error box
  // (rendered by the templates with gettext); English here only if one is missing.
  const FALLBACK = {
    cancelled: "The request was cancelled or timed out. Try again, and touch your key or confirm on your device when asked.",
    alreadyRegistered: "This security key is already registered on your account.",
    notSupported: "This browser or key does not support the kind of credential we asked for.",
    wrongDomain: "The browser refused: this page\u2019s address does not match the service\u2019s configured domain.",
    aborted: "The request was cancelled.",
    failed: "Something went wrong. Try again.",
    serverStatus: "The server answered {status}.",
    noWebauthn: "This browser cannot use security keys or passkeys. Use an authenticator app instead.",
  };

  function say(key) {
    const box = document.getElementById("webauthn-error");
    const text = box && box.dataset[key];
    return text || FALLBACK[key];
  }

  // The browser's refusals, in words a person can act on.
  function explain(error) {
    switch (error && error.name) {
      case "NotAllowedError": return say("cancelled");
      case "InvalidStateError": return say("alreadyRegistered");
      case "NotSupportedError": return say("notSupported");
      case "SecurityError": return say("wrongDomain");
      case "AbortError": return say("aborted");
      default: return (error && error.message) || say("failed");
    }
  }

  function showError(text) {
    const box = document.getElementById("webauthn-error");
    if (!box) return;
    box.textContent = text;
    box.hidden = !text;
  }

  function supported() {
    if (window.PublicKeyCredential && navigator.credentials) return true;
    showError(say("noWebauthn"));
    return false;
  }

  async function register(button) {
    showError("");
    if (!supported()) return;
    button.disabled = true;
    try {
      const options = await post(button.dataset.options);
      const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
      const nameInput = document.getElementById("key-name");
      const result = await post(button.dataset.verify, {
        credential: credentialJSON(credential),
        name: nameInput ? nameInput.value : "",
      });
      if (result.recovery_codes && result.recovery_codes.length) {
        const list = document.getElementById("new-codes-list");
        result.recovery_codes.forEach(function (code) {
          const item = document.createElement("li");
          const text = document.createElement("code");
          text.textContent = code;
          item.appendChild(text);
          list.appendChild(item);
        });
        // The first factor: the codes take the place of the page, whose list of factors
        // is out of date; confirming them loads it again, with the new key in it.
        document.querySelectorAll("main > section").forEach(function (other) { other.hidden = true; });
        const section = document.getElementById("new-recovery-codes");
        section.hidden = false;
        section.querySelector("h2").focus();
      } else {
        window.location.assign(window.location.pathname); // the list, and the server's "added"
      }
    } catch (error) {
      showError(explain(error));
    } finally {
      button.disabled = false;
    }
  }

  async function signIn(button) {
    showError("");
    if (!supported()) return;
    button.disabled = true;
    try {
      const options = await post(button.dataset.options);
      const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
      const result = await post(button.dataset.verify, { credential: credentialJSON(credential) });
      window.location.assign(result.redirect || "/account/security");
    } catch (error) {
      showError(explain(error));
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    const reg = document.getElementById("webauthn-register");
    if (reg) reg.addEventListener("click", function () { register(reg); });
    const login = document.getElementById("webauthn-signin");
    if (login) login.addEventListener("click", function () { signIn(login); });
  });
})();
