"""Transport-free protocol core: builds requests as data and interprets responses.

Invariants: nothing in this package opens sockets, sleeps, reads clocks, or reads
files or streams; callers hand in status codes, headers and body bytes.
"""
