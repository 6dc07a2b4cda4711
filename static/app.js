// Notes: the only script of the BFF's page.
//
// It talks to the notes API through the BFF (`/bff/api/...`), never to the
// API directly: the browser has no token to send. The session cookie goes
// along (same origin), and every call carries `X-CSRF: 1`, which the BFF
// requires on its JSON endpoints. A cross-site page cannot add that header
// without a CORS preflight the BFF never grants.
//
// Data from the server is put on the page with textContent only.
'use strict';

// Signing out: the page hands the provider its sign-out request as a form
// (the ID token must not sit in a URL); submit it at once. Without
// JavaScript the person presses its button.
(() => {
  const signOut = document.querySelector('form[data-auto-submit]');
  if (signOut) {
    signOut.submit();
  }
})();

(() => {
  const main = document.querySelector('main[data-signed-in="true"]');
  if (!main) {
    return; // signed out: nothing to do
  }

  const form = document.getElementById('note-form');
  const textarea = document.getElementById('note-text');
  const list = document.getElementById('notes-list');
  const status = document.getElementById('notes-status');
  const heading = document.getElementById('notes-heading');
  if (!form || !textarea || !list || !status) {
    return;
  }
  const submitButton = form.querySelector('button[type="submit"]');

  const NOTES_URL = '/bff/api/notes';
  const LOGIN_URL = '/bff/login?returnUrl=/';

  /** A failed call: the HTTP status (0 when the server was not reached) and a message for a person. */
  class ApiError extends Error {
    constructor(httpStatus, message) {
      super(message);
      this.httpStatus = httpStatus;
    }
  }

  // ---- Talking to the BFF ---------------------------------------------

  /** Calls the BFF; resolves with the parsed JSON body (or null), rejects with ApiError. */
  async function callApi(method, url, body) {
    const headers = { 'X-CSRF': '1', Accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }

    let response;
    try {
      response = await fetch(url, init);
    } catch {
      throw new ApiError(0, 'Could not reach the server. Check your connection and try again.');
    }

    const data = await readJson(response);
    if (!response.ok) {
      throw new ApiError(response.status, errorMessage(response, data));
    }
    return data;
  }

  /** The body as JSON, or null when it is empty or not JSON. */
  async function readJson(response) {
    try {
      const text = await response.text();
      return text ? JSON.parse(text) : null;
    } catch {
      return null;
    }
  }

  /** RFC 6749 / 6750 style errors carry `error` and maybe `error_description`. */
  function errorMessage(response, data) {
    if (data && typeof data === 'object') {
      if (typeof data.error_description === 'string' && data.error_description) {
        return data.error_description;
      }
      if (typeof data.error === 'string' && data.error) {
        return `Something went wrong: ${data.error}`;
      }
    }
    return `Something went wrong (HTTP ${response.status}${response.statusText ? ' ' + response.statusText : ''}).`;
  }

  // ---- Status line (a polite live region) -------------------------------

  let statusTimer;

  /** Replaces the status with `parts` (strings or nodes). Cleared first, so a repeated message is announced again. */
  function setStatus(parts, isError = false) {
    clearTimeout(statusTimer);
    status.replaceChildren();
    status.classList.toggle('is-error', isError);
    statusTimer = setTimeout(() => status.replaceChildren(...parts), 50);
  }

  function showSessionEnded() {
    const link = document.createElement('a');
    link.href = LOGIN_URL;
    link.textContent = 'Sign in again.';
    setStatus(['Your session has ended. ', link], true);
  }

  function showError(error) {
    if (error instanceof ApiError && error.httpStatus === 401) {
      showSessionEnded();
    } else {
      setStatus([error.message || 'Something went wrong.'], true);
    }
  }

  // ---- Rendering ------------------------------------------------------

  function formatTime(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) {
      return String(iso);
    }
    return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  }

  /** A short quote of the note, so each Delete button has its own accessible name. */
  function excerpt(text) {
    const oneLine = String(text).replace(/\s+/g, ' ').trim();
    return oneLine.length > 40 ? `${oneLine.slice(0, 40)}…` : oneLine;
  }

  function noteItem(note) {
    const item = document.createElement('li');
    item.className = 'note';

    const text = document.createElement('p');
    text.className = 'note-text';
    text.textContent = note.text;

    const meta = document.createElement('div');
    meta.className = 'note-meta';

    const time = document.createElement('time');
    time.dateTime = note.created_at;
    time.textContent = formatTime(note.created_at);

    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'button button-danger button-small';
    button.dataset.noteId = String(note.id);
    const hidden = document.createElement('span');
    hidden.className = 'visually-hidden';
    hidden.textContent = ` note: ${excerpt(note.text)}`;
    button.append('Delete', hidden);

    meta.append(time, button);
    item.append(text, meta);
    return item;
  }

  function renderNotes(notes) {
    if (notes.length === 0) {
      const empty = document.createElement('li');
      empty.className = 'note-empty';
      empty.textContent = 'No notes yet.';
      list.replaceChildren(empty);
      return;
    }
    list.replaceChildren(...notes.map(noteItem));
  }

  // ---- Actions ----------------------------------------------------------

  /** Loads the list; returns true when it worked. */
  async function loadNotes() {
    list.setAttribute('aria-busy', 'true');
    try {
      const data = await callApi('GET', NOTES_URL);
      renderNotes(data && Array.isArray(data.notes) ? data.notes : []);
      return true;
    } catch (error) {
      showError(error);
      return false;
    } finally {
      list.removeAttribute('aria-busy');
    }
  }

  async function addNote(event) {
    event.preventDefault();
    const text = textarea.value.trim();
    if (!text) {
      setStatus(['Write something first.'], true);
      textarea.focus();
      return;
    }

    if (submitButton) submitButton.disabled = true;
    try {
      await callApi('POST', NOTES_URL, { text }); // 201 with the created note
      textarea.value = '';
      if (await loadNotes()) {
        setStatus(['Note added']);
      }
    } catch (error) {
      showError(error);
    } finally {
      if (submitButton) submitButton.disabled = false;
    }
  }

  async function deleteNote(button) {
    button.disabled = true;
    try {
      await callApi('DELETE', `${NOTES_URL}/${encodeURIComponent(button.dataset.noteId)}`);
      if (await loadNotes()) {
        setStatus(['Note deleted']);
      }
      // The button is gone with the old list: put focus somewhere stable.
      if (heading) heading.focus();
    } catch (error) {
      button.disabled = false;
      showError(error);
    }
  }

  form.addEventListener('submit', addNote);
  list.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('button[data-note-id]') : null;
    if (button) {
      deleteNote(button);
    }
  });

  form.hidden = false; // hidden in the HTML so that it never shows without this script
  loadNotes();
})();
