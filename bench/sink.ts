// A minimal SMTP sink for the drain bench: a raw node:net server that speaks just enough SMTP
// (220 greeting, EHLO with PIPELINING, MAIL/RCPT/DATA, `.` → 250, RSET, NOOP, QUIT), keeps no
// message, and counts what arrives by Message-ID. Runs in a process of its own, so its CPU is
// neither the bench's nor the worker's.
//
//   node --import tsx bench/sink.ts SMTP_PORT CONTROL_PORT
//
// The control port answers GET /stats ({messages, distinct, duplicates, withoutId}),
// GET /ids (the distinct Message-IDs, one a line) and POST /reset.
import http from 'node:http';
import net from 'node:net';

const smtpPort = Number(process.argv[2]);
const controlPort = Number(process.argv[3]);
if (!smtpPort || !controlPort) {
  console.error('usage: bench/sink.ts SMTP_PORT CONTROL_PORT');
  process.exit(2);
}

let messages = 0;
let withoutId = 0;
let seen = new Map<string, number>();

const MESSAGE_ID = /^message-id:[ \t]*(<[^>\r\n]*>)/im;

function received(message: string): void {
  messages += 1;
  const headerEnd = message.indexOf('\r\n\r\n');
  const match = MESSAGE_ID.exec(headerEnd >= 0 ? message.slice(0, headerEnd) : message);
  if (!match?.[1]) {
    withoutId += 1;
    return;
  }
  seen.set(match[1], (seen.get(match[1]) ?? 0) + 1);
}

const smtp = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.setEncoding('latin1');
  let buffer = '';
  let inData = false;
  let searchFrom = 0;
  socket.write('220 sink.bench ESMTP\r\n');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    const replies: string[] = [];
    let quit = false;
    for (;;) {
      if (inData) {
        // The body ends with CRLF.CRLF; the DATA line's own CRLF counts as the first CRLF.
        const end = buffer.indexOf('\r\n.\r\n', Math.max(0, searchFrom - 4));
        const emptyEnd = buffer.startsWith('.\r\n');
        if (end < 0 && !emptyEnd) {
          searchFrom = buffer.length;
          break;
        }
        const cut = emptyEnd ? 0 : end + 2;
        received(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 3);
        inData = false;
        searchFrom = 0;
        replies.push('250 2.0.0 queued\r\n');
        continue;
      }
      const eol = buffer.indexOf('\r\n');
      if (eol < 0) break;
      const line = buffer.slice(0, eol);
      buffer = buffer.slice(eol + 2);
      const verb = line.slice(0, 4).toUpperCase();
      if (verb === 'EHLO') {
        replies.push('250-sink.bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n');
      } else if (verb === 'HELO') {
        replies.push('250 sink.bench\r\n');
      } else if (verb === 'MAIL' || verb === 'RCPT' || verb === 'RSET' || verb === 'NOOP') {
        replies.push('250 2.0.0 ok\r\n');
      } else if (verb === 'DATA') {
        replies.push('354 go ahead\r\n');
        inData = true;
        searchFrom = 0;
      } else if (verb === 'QUIT') {
        replies.push('221 bye\r\n');
        quit = true;
        break;
      } else {
        replies.push('502 5.5.2 not implemented\r\n');
      }
    }
    if (replies.length) socket.write(replies.join(''));
    if (quit) socket.end();
  });
  socket.on('error', () => socket.destroy());
});

function stats() {
  let duplicates = 0;
  for (const count of seen.values()) if (count > 1) duplicates += count - 1;
  return { messages, distinct: seen.size, duplicates, withoutId };
}

const control = http.createServer((req, res) => {
  if (req.url === '/stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(stats()));
  } else if (req.url === '/ids') {
    res.setHeader('content-type', 'text/plain');
    res.end([...seen.keys()].join('\n'));
  } else if (req.url === '/reset' && req.method === 'POST') {
    messages = 0;
    withoutId = 0;
    seen = new Map();
    res.end('ok');
  } else {
    res.statusCode = 404;
    res.end();
  }
});

smtp.listen(smtpPort, '127.0.0.1', () => {
  control.listen(controlPort, '127.0.0.1', () => {
    console.log(`sink: SMTP on ${smtpPort}, control on ${controlPort}`);
  });
});
