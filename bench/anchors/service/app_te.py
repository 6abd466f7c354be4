"""The seed's service (../../../../shared/bench/anchors/service/app.py: FastAPI +
asyncpg pool(min 5, max 20)) with TechEmpower's database tests added as
TechEmpower's own FastAPI entry implements them: /db, /queries (each row its
own fetchval on one prepared statement), /fortunes (HTML, sorted, the row
added at request time) and /updates (the rows read, then one executemany).
Differences from that entry: no Jinja (the page is built here, escaped with
html.escape), Starlette's JSONResponse (Debian has no orjson), and the
updates' ids sorted so that concurrent executemany calls take their row
locks in one order (as weft serve does; without it PostgreSQL reports
deadlocks under load). Debian's python3 modules only.

DSN: $SVC_DSN, default the seed's (127.0.0.1:55432, database postgres)."""
import html
import os
from random import randint

import asyncpg
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse

DSN = os.environ.get("SVC_DSN", "postgresql://postgres@127.0.0.1:55432/postgres")
READ_ROW_SQL = 'SELECT "randomnumber", "id" FROM "world" WHERE id = $1'
WRITE_ROW_SQL = 'UPDATE "world" SET "randomnumber"=$1 WHERE id=$2'
ADDITIONAL_ROW = (0, "Additional fortune added at request time.")
app = FastAPI()
pool = None


@app.on_event("startup")
async def startup():
    global pool
    pool = await asyncpg.create_pool(DSN, min_size=5, max_size=20)


@app.on_event("shutdown")
async def shutdown():
    await pool.close()


@app.get("/users/{id}")
async def get_user(id: int):
    row = await pool.fetchrow("SELECT id, name, email FROM users WHERE id=$1", id)
    if row is None:
        raise HTTPException(status_code=404, detail="user not found")
    return {"id": row["id"], "name": row["name"], "email": row["email"]}


def get_num_queries(queries):
    try:
        n = int(queries)
    except (ValueError, TypeError):
        return 1
    return 1 if n < 1 else 500 if n > 500 else n


@app.get("/db")
async def single_database_query():
    row_id = randint(1, 10000)
    async with pool.acquire() as connection:
        number = await connection.fetchval(READ_ROW_SQL, row_id)
    return JSONResponse({"id": row_id, "randomNumber": number})


@app.get("/queries")
async def multiple_database_queries(queries=None):
    row_ids = [randint(1, 10000) for _ in range(get_num_queries(queries))]
    worlds = []
    async with pool.acquire() as connection:
        statement = await connection.prepare(READ_ROW_SQL)
        for row_id in row_ids:
            number = await statement.fetchval(row_id)
            worlds.append({"id": row_id, "randomNumber": number})
    return JSONResponse(worlds)


PAGE_HEAD = ("<!DOCTYPE html><html><head><title>Fortunes</title></head><body>"
             "<table><tr><th>id</th><th>message</th></tr>")
PAGE_TAIL = "</table></body></html>"


@app.get("/fortunes")
async def fortunes():
    async with pool.acquire() as connection:
        rows = await connection.fetch("SELECT * FROM Fortune")
    data = [(r[0], r[1]) for r in rows]
    data.append(ADDITIONAL_ROW)
    data.sort(key=lambda row: row[1])
    body = "".join(f"<tr><td>{i}</td><td>{html.escape(m)}</td></tr>" for i, m in data)
    return HTMLResponse(PAGE_HEAD + body + PAGE_TAIL)


@app.get("/updates")
async def database_updates(queries=None):
    updates = [(randint(1, 10000), randint(1, 10000)) for _ in range(get_num_queries(queries))]
    async with pool.acquire() as connection:
        statement = await connection.prepare(READ_ROW_SQL)
        for row_id, _ in updates:
            await statement.fetchval(row_id)
        # a row drawn twice keeps its last number, the one the table holds
        last = dict(updates)
        await connection.executemany(WRITE_ROW_SQL, [(last[i], i) for i in sorted(last)])
    return JSONResponse([{"id": i, "randomNumber": last[i]} for i, _ in updates])
