// Live updates for the inbox list: new messages appear without a reload. The list works
// without this script; it only adds to it. Built with DOM methods, never innerHTML.
(() => {
  // "Delete all" asks first (without this script the button deletes at once, as it says).
  document.querySelector('form[action="/_inbox/delete-all"]')?.addEventListener('submit', (e) => {
    if (!window.confirm('Delete every message in the inbox?')) e.preventDefault();
  });

  const list = document.querySelector('[data-live-inbox]');
  if (!list || !('EventSource' in window)) return;
  const query = list.getAttribute('data-query') || '';
  if (query) return; // a search result stays as it is

  const status = document.getElementById('live-status');
  const source = new EventSource('/_inbox/api/events');
  source.addEventListener('open', () => {
    if (status) status.textContent = 'Live: new messages appear here as they arrive.';
  });
  source.addEventListener('message', (event) => {
    const message = JSON.parse(event.data);
    let ul = list.querySelector('ul.messages');
    if (!ul) {
      list.querySelector('.empty')?.remove();
      ul = document.createElement('ul');
      ul.className = 'messages';
      list.appendChild(ul);
    }
    ul.prepend(render(message));
    if (status) status.textContent = `New message: ${message.subject || '(no subject)'}`;
  });

  function render(m) {
    const li = document.createElement('li');
    li.className = 'message unread';
    const a = document.createElement('a');
    a.href = `/_inbox/messages/${m.id}`;
    const subject = span('subject', m.subject || '(no subject)');
    subject.prepend(span('visually-hidden', 'Unread: '));
    a.append(span('to', m.to.join(', ')), subject, span('snippet', m.snippet));
    const time = document.createElement('time');
    time.dateTime = m.receivedAt;
    time.textContent = m.receivedAt.replace('T', ' ').slice(0, 19);
    a.append(time);
    li.append(a);
    return li;
  }

  function span(className, text) {
    const el = document.createElement('span');
    el.className = className;
    el.textContent = text;
    return el;
  }
})();
