// Beeman Honey chat: a guest session, one conversation, replies streamed over SSE.
// No build step: plain browser JavaScript. Text is always inserted with textContent.
(function () {
  "use strict";

  const STORE = { access: "bh.access", refresh: "bh.refresh", conversation: "bh.conversation" };
  const UNREACHABLE = "We can't reach the shop right now. Check your connection and try again.";
  const CLOSED_NOTICE = "Our team closed that conversation, so this is a new one.";
  const DELETED_NOTICE = "That conversation was deleted, so this is a new one.";
  const DELETE_QUESTION = "Delete this conversation and all its messages? This can't be undone.";
  const MAX_RECONNECTS = 5;
  const POLL_MS = 2000;
  // While a member of staff has the conversation, their replies are fetched this often (and
  // only while the page is visible): staff replies come from the admin, not from a run.
  const STAFF_POLL_MS = 5000;
  const WITH_STAFF = "A member of our team has this conversation and will reply here.";
  const RATINGS = [["helpful", "Helpful"], ["unhelpful", "Not helpful"]];
  const FEEDBACK_THANKS = "Thanks for telling us.";

  const log = document.getElementById("chat-log");
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-input");
  const sendButton = document.getElementById("chat-send");
  const newChatButton = document.getElementById("chat-new");
  const deleteChatButton = document.getElementById("chat-delete");
  const statusLine = document.getElementById("chat-status");

  function setStatus(text, kind) {
    statusLine.textContent = text || "";
    statusLine.dataset.kind = kind || "error";
  }

  // A stream's events end its own "Reconnecting…", and leave any other notice (a new
  // conversation, staff) for the customer to read until they send again.
  const RECONNECTING = "Reconnecting…";
  function clearReconnecting() {
    if (statusLine.textContent === RECONNECTING) setStatus("");
  }

  class HttpError extends Error {
    constructor(status, body) {
      super((body && body.detail) || "HTTP " + status);
      this.status = status;
      this.body = body;
    }
  }

  async function api(method, path, body, extraHeaders) {
    const headers = Object.assign({ "Content-Type": "application/json" }, extraHeaders || {});
    const token = localStorage.getItem(STORE.access);
    if (token) headers.Authorization = "Bearer " + token;
    let response;
    try {
      response = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
    } catch (networkError) {
      throw new HttpError(0, { detail: UNREACHABLE });
    }
    if (response.status === 401 && token && !path.startsWith("/api/auth/")) {
      if (await refreshSession()) return api(method, path, body, extraHeaders);
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) throw new HttpError(response.status, data);
    return data;
  }

  // A refresh token works once (the server rotates it): requests that find their access token
  // expired together share one refresh, and the new refresh token is kept for the next.
  let refreshing = null;
  function refreshSession() {
    if (!refreshing) refreshing = renewTokens().finally(() => { refreshing = null; });
    return refreshing;
  }

  async function renewTokens() {
    const refresh = localStorage.getItem(STORE.refresh);
    localStorage.removeItem(STORE.access);
    if (!refresh) return false;
    try {
      const tokens = await api("POST", "/api/auth/token/refresh/", { refresh });
      localStorage.setItem(STORE.access, tokens.access);
      if (tokens.refresh) localStorage.setItem(STORE.refresh, tokens.refresh);
      return true;
    } catch (error) {
      return false;
    }
  }

  async function ensureSession() {
    if (!localStorage.getItem(STORE.access)) {
      const tokens = await api("POST", "/api/auth/guest/");
      localStorage.setItem(STORE.access, tokens.access);
      localStorage.setItem(STORE.refresh, tokens.refresh);
      localStorage.removeItem(STORE.conversation);
    }
    let conversationId = localStorage.getItem(STORE.conversation);
    if (conversationId) {
      try {
        const conversation = await api("GET", "/api/conversations/" + conversationId + "/");
        // A closed conversation takes no more messages: carry on in a new one.
        if (conversation.status === "closed") conversationId = null;
        else if (conversation.status === "needs_human") waitForStaff(conversationId);
      } catch (error) {
        if (error.status !== 404) throw error;
        conversationId = null;
      }
    }
    if (!conversationId) {
      const conversation = await api("POST", "/api/conversations/", { title: "Website chat" });
      conversationId = conversation.id;
      localStorage.setItem(STORE.conversation, conversationId);
    }
    return conversationId;
  }

  function renderCards(container, cards) {
    if (!cards || !cards.length) return;
    const list = document.createElement("div");
    list.className = "cards";
    list.setAttribute("aria-label", "Products mentioned");
    for (const card of cards) {
      const item = document.createElement("article");
      item.className = "card";
      const name = document.createElement("div");
      name.className = "card__name";
      name.textContent = card.name;
      const price = document.createElement("div");
      price.className = "card__price";
      price.textContent = (card.currency === "GBP" ? "£" : card.currency + " ") + card.price;
      const stock = document.createElement("div");
      stock.className = "card__stock" + (card.in_stock ? "" : " card__stock--out");
      stock.textContent = card.in_stock ? "In stock" : "Sold out";
      item.append(name, price, stock);
      list.append(item);
    }
    container.append(list);
  }

  // Under each of the assistant's replies: "Helpful" / "Not helpful". A click gives that
  // verdict (replacing the other), a click on the one given withdraws it; "Not helpful" then
  // asks what was wrong (optional), sent with it.
  function renderFeedback(container, message) {
    const bar = document.createElement("div");
    bar.className = "feedback";
    bar.setAttribute("role", "group");
    bar.setAttribute("aria-label", "Was this reply helpful?");
    const path =
      "/api/conversations/" + message.conversation + "/messages/" + message.id + "/feedback/";
    let given = message.feedback ? message.feedback.rating : null;
    const buttons = RATINGS.map(([rating, label]) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = label;
      button.dataset.rating = rating;
      return button;
    });
    const why = document.createElement("form");
    why.className = "feedback__why";
    why.hidden = true;
    const whyInput = document.createElement("input");
    whyInput.type = "text";
    whyInput.maxLength = 1000;
    whyInput.setAttribute("aria-label", "What was wrong with this reply? (optional)");
    whyInput.placeholder = "What was wrong? (optional)";
    const whySend = document.createElement("button");
    whySend.type = "submit";
    whySend.textContent = "Send";
    why.append(whyInput, whySend);
    // Its own line, not the page's status, which may be telling the customer something else
    // ("A member of our team has this conversation...").
    const note = document.createElement("span");
    note.className = "feedback__note";
    note.setAttribute("role", "status");

    function show() {
      for (const button of buttons) {
        button.setAttribute("aria-pressed", String(button.dataset.rating === given));
      }
    }
    async function rate(body, withdraw) {
      const controls = [...buttons, whySend];
      controls.forEach((each) => { each.disabled = true; });
      try {
        if (withdraw) await api("DELETE", path);
        else await api("PUT", path, body);
        given = withdraw ? null : body.rating;
        note.textContent = withdraw ? "" : FEEDBACK_THANKS;
        return true;
      } catch (error) {
        // Withdrawn already (in another tab): it is gone, as asked.
        if (withdraw && error.status === 404) given = null;
        else note.textContent = error.message || UNREACHABLE;
        return false;
      } finally {
        controls.forEach((each) => { each.disabled = false; });
        show();
      }
    }
    for (const button of buttons) {
      button.addEventListener("click", async () => {
        const rating = button.dataset.rating;
        const withdraw = given === rating;
        const rated = await rate({ rating }, withdraw);
        why.hidden = !(rated && !withdraw && rating === "unhelpful");
        if (!why.hidden) whyInput.focus();
      });
    }
    why.addEventListener("submit", async (event) => {
      event.preventDefault();
      const comment = whyInput.value.trim();
      if (!comment) return;
      if (await rate({ rating: "unhelpful", comment }, false)) why.hidden = true;
    });
    show();
    bar.append(...buttons, why, note);
    container.append(bar);
  }

  function renderMessage(message) {
    if (shownConversation && message.conversation !== shownConversation) return null;
    const shown = log.querySelector('[data-message-id="' + message.id + '"]');
    if (shown) return shown;
    const item = document.createElement("li");
    item.className = "msg msg--" + message.role;
    item.dataset.messageId = message.id;
    const text = document.createElement("div");
    text.className = "msg__text";
    text.dir = "auto"; // a message in Arabic or Hebrew reads right to left
    text.textContent = message.content;
    item.append(text);
    renderCards(item, message.cards);
    if (message.role === "assistant") renderFeedback(item, message);
    log.append(item);
    item.scrollIntoView({ block: "end" });
    return item;
  }

  function typingBubble() {
    const item = document.createElement("li");
    item.className = "msg msg--assistant msg--typing";
    const text = document.createElement("div");
    text.className = "msg__text";
    text.textContent = "Assistant is typing…";
    item.append(text);
    log.append(item);
    return { item, text, started: false };
  }

  function lastMessageId() {
    const shown = log.querySelectorAll("[data-message-id]");
    return shown.length ? shown[shown.length - 1].dataset.messageId : "";
  }

  let staffPoll = null;
  function waitForStaff(conversationId) {
    setStatus(WITH_STAFF, "info");
    if (staffPoll) return;
    const conversationPath = "/api/conversations/" + conversationId + "/";
    staffPoll = setInterval(async () => {
      if (document.visibilityState !== "visible") return;
      try {
        const after = lastMessageId();
        const page = await api(
          "GET", conversationPath + "messages/?page_size=100" + (after ? "&after=" + after : ""),
        );
        page.results.forEach(renderMessage);
        const conversation = await api("GET", conversationPath);
        if (conversation.status !== "needs_human") {
          clearInterval(staffPoll);
          staffPoll = null;
          setStatus("");
        }
      } catch (error) {
        // The next tick tries again.
      }
    }, STAFF_POLL_MS);
  }

  // Runs still answering a message when the history was loaded (the page was reloaded while
  // a reply was being written), oldest first: followed once the page is ready.
  let unanswered = [];

  // The conversation the log shows: a reply to another (one the customer left with "New chat"
  // while it was being written) is not shown in it.
  let shownConversation = null;

  async function loadHistory(conversationId) {
    log.replaceChildren();
    unanswered = [];
    shownConversation = conversationId;
    let path = "/api/conversations/" + conversationId + "/messages/?page_size=100";
    while (path) {
      const page = await api("GET", path);
      for (const message of page.results) {
        renderMessage(message);
        const run = message.answering_run;
        if (run && (run.status === "queued" || run.status === "running")) unanswered.push(run.id);
      }
      path = page.next ? new URL(page.next).pathname + new URL(page.next).search : null;
    }
  }

  // Server-Sent Events over fetch, so the Authorization header and Last-Event-ID can be sent.
  async function streamRun(runId, bubble) {
    let lastEventId = "";
    for (let attempt = 0; attempt <= MAX_RECONNECTS; attempt++) {
      const headers = { Accept: "text/event-stream" };
      const token = localStorage.getItem(STORE.access);
      if (token) headers.Authorization = "Bearer " + token;
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      try {
        const response = await fetch("/api/runs/" + runId + "/events/", { headers });
        if (!response.ok) {
          throw new HttpError(response.status, await response.json().catch(() => null));
        }
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let boundary;
          while ((boundary = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, boundary);
            buffer = buffer.slice(boundary + 2);
            const event = parseEvent(block);
            if (!event) continue;
            if (event.id) lastEventId = event.id;
            if (handleEvent(event, bubble)) return;
          }
        }
      } catch (error) {
        // This account's other tabs hold every stream it may open (429), or the server has
        // no stream to give (503: busy, or its event store unreachable): ask for the run.
        if (error.body && error.body.code === "too_many_streams") return pollRun(runId, bubble);
        if (error.status === 503) return pollRun(runId, bubble);
        if (error.status && error.status !== 0 && error.status < 500) throw error;
      }
      setStatus(RECONNECTING, "info");
      await new Promise((resolve) => setTimeout(resolve, 500 * (attempt + 1)));
    }
    return pollRun(runId, bubble);
  }

  // The message is stored and its run will answer it: while the shop cannot be reached (or
  // asks for a pause), keep asking. The page used to give up, put the message back in the box,
  // and so have it sent and answered twice.
  async function pollRun(runId, bubble) {
    for (let failures = 0; ; ) {
      let run;
      try {
        run = await api("GET", "/api/runs/" + runId + "/");
        failures = 0;
        clearReconnecting();
      } catch (error) {
        if (error.status && error.status < 500 && error.status !== 429) throw error;
        setStatus(RECONNECTING, "info");
        failures += 1;
        await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS * failures, 15000)));
        continue;
      }
      if (run.status === "succeeded") {
        bubble.item.remove();
        if (run.reply) renderMessage(run.reply);
        return;
      }
      if (run.status === "failed") return handleEvent({ type: "run.failed", data: {} }, bubble);
      if (run.status === "cancelled") return handleEvent({ type: "run.cancelled", data: {} }, bubble);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  function parseEvent(block) {
    const event = { id: "", type: "message", data: "" };
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") event.id = value;
      else if (field === "event") event.type = value;
      else if (field === "data") event.data += value;
    }
    if (!event.data) return null;
    try {
      event.data = JSON.parse(event.data);
    } catch (error) {
      return null;
    }
    return event;
  }

  // Returns true when the run is over.
  function handleEvent(event, bubble) {
    const data = event.data;
    if ((event.type === "run.started" && data.delivery > 1) || event.type === "text.reset") {
      // Started over (the worker writing it was lost, or the provider failed mid-reply and
      // another answers): what it wrote before goes.
      bubble.started = false;
      bubble.text.textContent = "Assistant is typing…";
      bubble.item.classList.add("msg--typing");
    } else if (event.type === "text.delta") {
      if (!bubble.started) {
        bubble.started = true;
        bubble.text.textContent = "";
        bubble.item.classList.remove("msg--typing");
      }
      bubble.text.textContent += data.text;
      bubble.item.scrollIntoView({ block: "end" });
    } else if (event.type === "reply.stored") {
      bubble.item.remove();
      renderMessage(data.message);
    } else if (event.type === "run.failed") {
      // Not for a conversation the customer has left with "New chat" (its bubble is gone).
      if (bubble.item.isConnected) {
        setStatus("Sorry, the assistant couldn't answer that. Please try again.");
      }
      return true;
    } else if (event.type === "run.cancelled" || event.type === "run.deleted") {
      bubble.item.remove();
      return true;
    } else if (event.type === "run.finished") {
      clearReconnecting();
      return true;
    }
    clearReconnecting();
    return false;
  }

  // One start-up (session, conversation, history) shared by everything that needs it, so a
  // message typed while the page loads never opens a second session.
  let ready = null;
  function whenReady() {
    if (!ready) {
      ready = (async () => {
        const conversationId = await ensureSession();
        await loadHistory(conversationId);
        return conversationId;
      })().catch((error) => {
        ready = null;
        throw error;
      });
    }
    return ready;
  }

  // "New chat" and "Delete chat" wait while a message is being posted: the post would find
  // its conversation closed or deleted under it.
  function postMessage(conversationId, content) {
    newChatButton.disabled = deleteChatButton.disabled = true;
    return api(
      "POST",
      "/api/conversations/" + conversationId + "/messages/",
      { content },
      { "Idempotency-Key": crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random() },
    ).finally(() => { newChatButton.disabled = deleteChatButton.disabled = false; });
  }

  // ``onPosted()`` once the message is stored: what fails after it does not unsend it.
  async function send(content, onPosted) {
    let conversationId = await whenReady();
    let posted;
    try {
      posted = await postMessage(conversationId, content);
    } catch (error) {
      if (error.status !== 409 && error.status !== 404) throw error;
      // Staff closed (409) or deleted (404) the conversation while the page was open: start a
      // new one and say so.
      localStorage.removeItem(STORE.conversation);
      ready = null;
      conversationId = await whenReady();
      setStatus(error.status === 409 ? CLOSED_NOTICE : DELETED_NOTICE);
      posted = await postMessage(conversationId, content);
    }
    onPosted();
    renderMessage(posted.message);
    if (!posted.run) {
      waitForStaff(conversationId);
      return;
    }
    await followRun(conversationId, posted.run.id);
  }

  // Show the run's reply as it is written; then, if it handed the chat to staff, wait for them.
  async function followRun(conversationId, runId) {
    const bubble = typingBubble();
    try {
      await streamRun(runId, bubble);
    } finally {
      bubble.item.classList.contains("msg--typing") && bubble.item.remove();
    }
    const conversation = await api("GET", "/api/conversations/" + conversationId + "/").catch(
      (error) => { if (error.status !== 404) throw error; },  // deleted meanwhile
    );
    if (conversation && conversation.status === "needs_human") waitForStaff(conversationId);
  }

  async function followUnanswered(conversationId) {
    const runs = unanswered;
    unanswered = [];
    for (const runId of runs) await followRun(conversationId, runId);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const content = input.value.trim();
    if (!content) return;
    sendButton.disabled = true;
    input.value = "";
    setStatus("");
    let posted = false;
    try {
      if (startingOver) await startingOver.catch(() => null);
      await send(content, () => { posted = true; });
    } catch (error) {
      if (!posted) input.value = content;
      setStatus(error.status === 429 ? "You're sending messages quickly — please wait a moment." : error.message || UNREACHABLE);
    } finally {
      sendButton.disabled = false;
      input.focus();
    }
  });

  // "New chat": the conversation is closed (the assistant forgets it: a new question is not
  // read as a follow-up of the last; a reply still being written for it is cancelled) and a
  // new one starts. "Delete chat": it is deleted with its messages (refused while a reply is
  // being written) and a new one starts. A message sent meanwhile waits for the new one.
  let startingOver = null;
  async function startOver(leave) {
    const conversationId = await whenReady();
    const path = "/api/conversations/" + conversationId + "/";
    try {
      await (leave === "delete" ? api("DELETE", path) : api("POST", path + "close/"));
    } catch (error) {
      if (error.status !== 404) throw error;
    }
    localStorage.removeItem(STORE.conversation);
    if (staffPoll) {
      clearInterval(staffPoll);
      staffPoll = null;
    }
    ready = null;
    await whenReady();
    setStatus("");
    input.focus();
  }

  async function startOverClicked(leave) {
    newChatButton.disabled = deleteChatButton.disabled = true;
    startingOver = startOver(leave);
    try {
      await startingOver;
      if (leave === "delete") setStatus("Conversation deleted.", "info");
    } catch (error) {
      setStatus(error.message || UNREACHABLE);
    } finally {
      startingOver = null;
      newChatButton.disabled = deleteChatButton.disabled = false;
    }
  }

  newChatButton.addEventListener("click", () => startOverClicked("close"));
  deleteChatButton.addEventListener("click", () => {
    if (window.confirm(DELETE_QUESTION)) startOverClicked("delete");
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  (async function start() {
    try {
      const conversationId = await whenReady();
      if (!staffPoll) setStatus("");
      input.focus();
      await followUnanswered(conversationId);
    } catch (error) {
      setStatus(error.message || UNREACHABLE);
      input.focus();
    }
  })();
})();
