<?php
// phpredis's session handler with locking enabled (redis.session.locking_enabled=1), database 2
// of the region whose port is given: takes the lock (SET NX PX), reads and writes the session,
// releases the lock (phpredis's release script). Prints the session as JSON.
//   php stacks/phpredis_session.php SESSION_ID PORT
[$_, $id, $port] = $argv;
ini_set('session.save_handler', 'redis');
ini_set('session.save_path', "tcp://127.0.0.1:$port?database=2");
ini_set('redis.session.locking_enabled', '1');
ini_set('redis.session.lock_retries', '50');
ini_set('redis.session.lock_wait_time', '20000');
ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
session_id($id);
if (!session_start()) {
    fwrite(STDERR, "session_start failed\n");
    exit(1);
}
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
$_SESSION['last_port'] = $port;
session_write_close();
echo json_encode($_SESSION), "\n";
