CREATE TABLE a(x int);
-- c;
INSERT INTO a VALUES ('a;b'), ($$x;y$$), (E'it\'s;');
DO $b$ BEGIN PERFORM 1; END $b$;
/* x; /* y; */ */ SELECT "q;""";
