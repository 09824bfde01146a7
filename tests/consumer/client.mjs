// A WebSocket client for the consumer test: subscribe, make a change with psql, expect its change frame.
import { execFileSync } from 'node:child_process';

const [url, database, root] = process.argv.slice(2);
const timer = setTimeout(() => { console.error('consumer: no change frame within 30 s'); process.exit(1); }, 30_000);
const socket = new WebSocket(url);
socket.onmessage = (event) => {
  const frame = JSON.parse(event.data);
  if (frame.type === 'subscribed') {
    execFileSync('bash', [`${root}/scripts/pg.sh`, 'psql', '-d', database, '-q', '-c', "INSERT INTO items (name) VALUES ('from the packed packages')"]);
  } else if (frame.type === 'change' && frame.table === 'items' && frame.data?.name === 'from the packed packages') {
    console.error(`consumer: received ${event.data}`);
    clearTimeout(timer);
    socket.close(1000);
    process.exit(0);
  } else if (frame.type === 'error') {
    console.error(`consumer: error frame ${event.data}`);
    process.exit(1);
  }
};
socket.onerror = (error) => { console.error('consumer: socket error', error.message ?? error); process.exit(1); };
