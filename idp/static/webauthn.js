/* Passkeys on the hosted pages: navigator.credentials.create() / get() and back.
 *
 * A form marked data-webauthn="create" | "get" | "identify" runs one ceremony when
 * submitted: it POSTs itself (CSRF token, sign-in id) to data-options-url for the
 * options with a fresh challenge, converts their base64url fields to ArrayBuffers,
 * asks the browser, writes the answer (base64url again, as JSON) into its hidden
 * "credential" input and submits for real. A form with data-conditional also offers
 * the passkeys in the email field's autofill (mediation: "conditional") where the
 * browser supports it. Messages come from the form's data-msg-* attributes.
 */
(function () {
  "use strict";

  function toBuffer(value) {
    var base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    if (!buffer) { return null; }
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return Object.assign({}, item, {id: toBuffer(item.id)});
    });
  }

  function creationOptions(json) {
    return Object.assign({}, json, {
      challenge: toBuffer(json.challenge),
      user: Object.assign({}, json.user, {id: toBuffer(json.user.id)}),
      excludeCredentials: descriptors(json.excludeCredentials)
    });
  }

  function requestOptions(json) {
    return Object.assign({}, json, {
      challenge: toBuffer(json.challenge),
      allowCredentials: descriptors(json.allowCredentials)
    });
  }

  function credentialJSON(credential) {
    var response = credential.response;
    var out = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ?
        credential.getClientExtensionResults() : {},
      response: {clientDataJSON: toBase64url(response.clientDataJSON)}
    };
    if (response.attestationObject) {
      out.response.attestationObject = toBase64url(response.attestationObject);
      out.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      out.response.authenticatorData = toBase64url(response.authenticatorData);
      out.response.signature = toBase64url(response.signature);
      out.response.userHandle = toBase64url(response.userHandle);
    }
    return JSON.stringify(out);
  }

  function say(form, key) {
    var status = form.querySelector("[data-webauthn-status]");
    if (!status) { return; }
    status.textContent = form.getAttribute("data-msg-" + key) || "";
    status.hidden = !status.textContent;
  }

  function fetchOptions(form) {
    var body = new URLSearchParams();
    ["csrf_token", "signin"].forEach(function (name) {
      var input = form.querySelector("input[name='" + name + "']");
      if (input && input.value) { body.append(name, input.value); }
    });
    return fetch(form.getAttribute("data-options-url"), {
      method: "POST", body: body, credentials: "same-origin",
      headers: {"Accept": "application/json"}
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok || !data.options) { throw new Error("options"); }
        var signin = form.querySelector("input[name='signin']");
        if (signin && data.signin) { signin.value = data.signin; }
        return data.options;
      });
    });
  }

  function finish(form, credential) {
    form.querySelector("input[name='credential']").value = credentialJSON(credential);
    form.setAttribute("data-webauthn-done", "1");
    form.submit();
  }

  var conditional = null; // the AbortController of the autofill request, if any

  function ceremony(form) {
    var mode = form.getAttribute("data-webauthn");
    if (conditional) { conditional.abort(); conditional = null; }
    say(form, "");
    return fetchOptions(form).then(function (options) {
      if (mode === "create") {
        return navigator.credentials.create({publicKey: creationOptions(options)});
      }
      return navigator.credentials.get({publicKey: requestOptions(options)});
    }).then(function (credential) {
      if (credential) { finish(form, credential); }
    }).catch(function (error) {
      var name = error && error.name;
      say(form, name === "NotAllowedError" || name === "AbortError" ? "cancelled" :
        name === "InvalidStateError" ? "exists" : "failed");
    });
  }

  function autofill(form) {
    if (!window.PublicKeyCredential || !PublicKeyCredential.isConditionalMediationAvailable) {
      return;
    }
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (!available) { return; }
      return fetchOptions(form).then(function (options) {
        conditional = new AbortController();
        return navigator.credentials.get({
          publicKey: requestOptions(options), mediation: "conditional",
          signal: conditional.signal
        });
      }).then(function (credential) {
        if (credential) { finish(form, credential); }
      });
    }).catch(function () { /* the autofill is optional: the button still works */ });
  }

  function init() {
    var forms = document.querySelectorAll("form[data-webauthn]");
    Array.prototype.forEach.call(forms, function (form) {
      if (!window.PublicKeyCredential) {
        say(form, "unsupported");
        Array.prototype.forEach.call(form.querySelectorAll("button"), function (button) {
          button.disabled = true;
        });
        return;
      }
      form.addEventListener("submit", function (event) {
        if (form.getAttribute("data-webauthn-done")) { return; }
        event.preventDefault();
        ceremony(form);
      });
      if (form.hasAttribute("data-conditional")) { autofill(form); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
