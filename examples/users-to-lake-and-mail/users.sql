-- The `users` table of "users -> data lake + mail service"
-- (tests/fixtures/seed-logistics/README.md): `index` is the auto-incrementing
-- column the polling source follows. Load with:
--   psql "$SLUICE_PG_URL" -f examples/users-to-lake-and-mail/users.sql
CREATE TABLE users (
    index      serial PRIMARY KEY,
    name       text NOT NULL,
    email      text NOT NULL,
    created_at timestamp NOT NULL
);
INSERT INTO users (name, email, created_at) VALUES ('Ana', 'ana@example.com', '2020-04-02 10:01:00');
INSERT INTO users (name, email, created_at) VALUES ('Bruno', 'bruno@example.com', '2020-04-03 10:02:00');
INSERT INTO users (name, email, created_at) VALUES ('Carla', 'carla@example.com', '2020-04-04 10:03:00');
INSERT INTO users (name, email, created_at) VALUES ('Diego', 'diego@example.com', '2020-04-05 10:04:00');
INSERT INTO users (name, email, created_at) VALUES ('Elisa', 'elisa@example.com', '2020-04-06 10:05:00');
INSERT INTO users (name, email, created_at) VALUES ('Fabio', 'fabio@example.com', '2020-04-07 10:06:00');
INSERT INTO users (name, email, created_at) VALUES ('Gabi', 'gabi@example.com', '2020-04-08 10:07:00');
INSERT INTO users (name, email, created_at) VALUES ('Hugo', 'hugo@example.com', '2020-04-09 10:08:00');
INSERT INTO users (name, email, created_at) VALUES ('Ines', 'ines@example.com', '2020-04-01 10:09:00');
INSERT INTO users (name, email, created_at) VALUES ('Joao', 'joao@example.com', '2020-04-02 10:10:00');
INSERT INTO users (name, email, created_at) VALUES ('Karen', 'karen@example.com', '2020-04-03 10:11:00');
INSERT INTO users (name, email, created_at) VALUES ('Lucas', 'lucas@example.com', '2020-04-04 10:12:00');
