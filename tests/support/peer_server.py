#!/usr/bin/env python3
"""A misbehaving TCP server for muxkit's tests, on 127.0.0.1 (loopback only).

Usage: peer_server.py MODE [N]
Prints "port P" on stdout once listening, then serves until stdin closes (the test ends it).

Modes:
  silent        accept and read, never answer
  backlog       listen with a backlog of 0 and never accept: later connects time out
  close-after   echo the first N bytes of each connection, then shut down the write side (EOF)
  reset-after   echo the first N bytes of each connection, then reset it (SO_LINGER 0)
  wrong         answer every read with as many bytes, each one flipped
  redis         a Redis-like line server: each line PING gets +PONG, any other -ERR
  banner        send a banner line at once (as sshd does), then read and never answer
  reset         accept and reset at once (SO_LINGER 0), before a byte is read
  close         accept and close at once (a FIN), before a byte is read
  early-reply   once N bytes of a connection arrived, answer "413" (as a server with a body size
                limit does), stop reading for 2 s (the request cannot be written whole meanwhile),
                then read and never answer again
"""
import socket
import struct
import sys
import threading
import time


def serve_lines(conn):
    pending = b""
    while True:
        data = conn.recv(65536)
        if not data:
            return
        pending += data
        replies = []
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            replies.append(b"+PONG\r\n" if line.rstrip(b"\r") == b"PING" else b"-ERR unknown command\r\n")
        if replies:
            conn.sendall(b"".join(replies))


def serve_connection(conn, mode, n):
    echoed = 0
    try:
        if mode == "redis":
            serve_lines(conn)
            return
        if mode == "banner":
            conn.sendall(b"SSH-2.0-peer_server\r\n")
            mode = "silent"
        while True:
            data = conn.recv(65536)
            if not data:
                return
            if mode == "silent":
                continue
            if mode == "early-reply":
                echoed += len(data)
                if echoed >= n and echoed - len(data) < n:
                    conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\n\r\n")
                    time.sleep(2)
                continue
            if mode == "wrong":
                conn.sendall(bytes(b ^ 0x20 for b in data))
                continue
            take = data[: max(0, n - echoed)]
            if take:
                conn.sendall(take)
                echoed += len(take)
            if echoed >= n:
                if mode == "close-after":
                    conn.shutdown(socket.SHUT_WR)
                    while conn.recv(65536):  # keep reading, so the close stays clean
                        pass
                    return
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
    except OSError:
        pass
    finally:
        conn.close()


def main():
    mode = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0 if mode == "backlog" else 128)
    print(f"port {listener.getsockname()[1]}", flush=True)
    if mode != "backlog":

        def accept_loop():
            while True:
                conn, _ = listener.accept()
                if mode in ("reset", "close"):
                    if mode == "reset":
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    conn.close()
                    continue
                threading.Thread(target=serve_connection, args=(conn, mode, n), daemon=True).start()

        threading.Thread(target=accept_loop, daemon=True).start()
    sys.stdin.read()  # until the test closes our stdin or ends us


if __name__ == "__main__":
    main()
