-- The accounts on the target a grant allows (`access grant --login deploy --login root`),
-- comma-separated in the order given; empty: the target's default account only.
ALTER TABLE grants ADD COLUMN logins TEXT NOT NULL DEFAULT '';
