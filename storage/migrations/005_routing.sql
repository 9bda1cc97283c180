-- How many OPEN chats an agent takes at once (round robin stops offering at the limit; a manual
-- accept past it is refused).
ALTER TABLE agents ADD COLUMN max_open_chats integer NOT NULL DEFAULT 5 CHECK (max_open_chats > 0);
