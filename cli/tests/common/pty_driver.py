import fcntl, json, os, pty, select, struct, sys, termios, time
steps = json.loads(sys.argv[1]); argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 80, 0, 0))
    os.execvp(argv[0], argv)
buf = b''
out = sys.stdout.buffer  # everything the terminal showed, for assertions
for step in steps:
    if step[0] == 'send':
        os.write(fd, step[1].encode())
    elif step[0] == 'resize':
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', step[1], step[2], 0, 0))
    elif step[0] == 'expect':
        pat = step[1].encode(); end = time.time() + 30
        while pat not in buf:
            r, _, _ = select.select([fd], [], [], max(0, end - time.time()))
            if not r:
                sys.stderr.write('timeout waiting for %r; got %r\n' % (pat, buf[-800:])); sys.exit(90)
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b''
            if not data:
                sys.stderr.write('pty closed waiting for %r; got %r\n' % (pat, buf[-800:])); sys.exit(91)
            buf += data
            out.write(data)
        buf = buf[buf.index(pat) + len(pat):]
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data: break
    out.write(data)
out.flush()
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
