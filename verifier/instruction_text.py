"""What in a piece of fixed text reads as an instruction to a model, in the languages models are
published in; and the words of a text, in any script.

A chat template's fixed text (verifier.template_checks) is judged by `instruction_hits`: the
English patterns (INSTRUCTION_LIKE) read the text as a person reads it (look-alike letters of
other scripts folded to Latin, identifiers split into words, base64 decoded), and the patterns of
other languages (LANGUAGE_INSTRUCTIONS) read it with case and Latin accents dropped. Each
language has the same kinds of instruction as English: ignore, always/never, you must, secrecy,
jailbreak, promotion, sending data, credentials. An injection written in Chinese or Russian is
as much an injection as one in English; a template's benign fixed text in any language (a
default system prompt naming the assistant) is not.

`text_words` splits text into words of any script (letters and their combining marks): a
check that compares the words of two renders must see Chinese, Russian or Hindi text too, not
only [A-Za-z]. Han and kana are written without spaces, so each of their characters is a word of
its own there (a sentence differs from another in a character, not as a whole).
"""
from __future__ import annotations

import base64
import codecs
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# (label, pattern) matched case-insensitively on English text as it reads (fold_lookalikes).
INSTRUCTION_LIKE = [(label, re.compile(rx, re.I)) for label, rx in (
    ("imperative 'ignore'", r"\b(ignore|disregard|forget|override)\b"),
    ("imperative 'always'/'never'", r"\b(always|never)\b"),
    ("imperative 'you must'", r"\b(you\s+(must|shall|have\s+to|need\s+to|are\s+required\s+to)|must\s+not)\b"),
    ("secrecy", r"\b(do\s+not|don'?t|never)\s+(tell|reveal|mention|disclose|inform|let|show|say)\b|\bwithout\s+telling\b|"
                r"\b(secret(ly)?|covert(ly)?|hidden|pretend)\b"),
    ("jailbreak", r"\b(jailbreak\w*|developer\s+mode|unrestricted|no\s+restrictions|unfiltered)\b"),
    ("promotion", r"\b(recommend\w*|promot\w*|advertis\w*|prefers?|endors\w*|sponsor\w*)\b"),
    ("sending data", r"\b(send|upload|forward|exfiltrat\w*|leak\w*|transmit\w*)\b"),
    ("credentials", r"\b(passwords?|credentials?|api[\s_-]?keys?|private\s+keys?|access\s+tokens?|ssh)\b"),
    ("URL", r"\b(?:https?|ftp)://\S+|\bwww\.\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|io|ru|cn|xyz|top|info|biz|sh)\b"),
    ("code or shell", r"\b(curl|wget|bash|powershell|sudo|chmod|eval|exec|subprocess|os\.system)\b|\bsh\s+-c\b|\brm\s+-rf\b|"
                      r"\bimport\s+\w+|\$\(|<script\b"),
    # Paraphrases of the kinds above, and kinds the vocabulary did not have. Each is a family of
    # phrasings (a verb or a construction and what it takes), not one sentence.
    ("override", r"\b(set|put|cast|push|lay)\s+aside\b|\bpay\s+no\s+(attention|heed)\b|"
                 r"\b(discard|drop|abandon|dismiss|scrap|throw\s+out)\s+(all\s+|any\s+|the\s+|your\s+|everything\s+)*(previous|prior|earlier|above|"
                 r"preceding|former|original|existing|other)\b|\bno\s+longer\s+(bound|restricted|limited|constrained|subject|obliged)\b|"
                 r"\bfrom\s+now\s+on\b|\b(stop|cease|quit)\s+(following|obeying|applying|observing)\b|"
                 r"\byour\s+(real|true|secret|hidden)\s+(goal|purpose|task|job|mission|priority|objective)\b|\byour\s+loyalty\b"),
    ("covert", r"\b(quietly|silently|subtly|discreetly|stealthily|surreptitiously|invisibly)\b|\bbetween\s+(us|you\s+and\s+me)\b|"
               r"\bunder\s+no\s+circumstances\b|\b(is|are)\s+not\s+to\s+(find\s+out|know|learn|see|notice)\b|"
               r"\bwithout\s+(the\s+user|users|them|anyone|the\s+reader)\s+(knowing|noticing|realizing|realising|seeing)\b|"
               r"\bdeny\w*\s+(being|having|that\s+(you|this|these|there)|you\s+are|any\s+(other|connection|relationship|link|affiliation|instructions?))\b|\b(insist|claim)\w*\s+(that\s+)?you\s+(are|were|have)\b|"
               r"\b(answer|say|reply)\s+that\s+you\s+have\s+(none|no\s+\w*\s*instructions)\b"),
    ("jailbreak, paraphrased", r"\bDAN\b|\bdo\s+anything\s+now\b|\bbroken?\s+free\b|"
                               r"\b(not|no\s+longer|never)\s+(\w+\s+){0,2}(bound|restricted|limited)\s+by\b|"
                               r"\b(refusing|refusals?|declining)\s+(is|are)\s+(not\s+(allowed|permitted|an\s+option)|forbidden)\b|"
                               r"\b(even\s+if|including|even\s+when)\s+(it\s+is\s+|they\s+are\s+|it's\s+)?(harmful|dangerous|illegal|unethical|unsafe)\b|"
                               r"\bagainst\s+the\s+law\b|\b(it\s+is|it's)\s+(fine|ok|okay|acceptable|allowed)\s+to\s+(write|produce|give|help|create|make)\b"),
    ("every reply", r"\b(insert|append|prepend|add|include|put|place|embed|end|start|begin|sign|finish|attach|close|mention|bring\s+up)\w*\b"
                    r"[^.!?\n]{0,120}\b(every|each|all|any)\s+(of\s+(your|the)\s+)?(reply|replies|response|responses|answer|answers|"
                    r"completion|completions|output)\b|\b(at|to)\s+the\s+(bottom|end|top|start)\s+of\s+(every|each|all|any)\b"),
    ("steering", r"\b(point|direct|refer|steer|nudge|push|redirect|lead|funnel)\w*\s+(them|users?|the\s+user|people|anyone|customers?|"
                 r"conversations?|readers?)\s+(\w+\s+){0,4}?(to|toward|towards)\b|\b(speak|talk|write)\w*\s+(warmly|highly|positively|"
                 r"favou?rably|poorly|negatively|badly)\b|\bcast\s+\w+\s+(\w+\s+)?in\s+a\s+(poor|bad|negative)\s+light\b|\bfavou?r(s|ing)?\s+"
                 r"(the\s+)?(?-i:[A-Z])|\b(speak|talk|write)\w*\s+(\w+\s+){0,2}(of|about)\s+(rivals?|competitors?|competing\s+products?)\b|\b(best|only)\s+choice\b|\b(convince|persuade|upsell)\w*\b|"
                 r"\b(discount|promo|coupon|referral|affiliate)\s+(codes?|links?)\b|"
                 r"\b(join|follow|subscribe\s+to)\s+(our|my|the)\s+(\w+\s+)?(channel|group|server|newsletter|account)\b"),
    ("deception or harm", r"\b(subtly\s+)?(wrong|incorrect|false|misleading|inaccurate|fake)\s+(answers?|information|advice|results?|"
                          r"facts?|numbers?|claims?|code)\b|\b(mislead\w*|deceiv\w*|decepti\w*|lie\s+to)\b|\bmanipulat\w*\s+(the\s+)?(users?|people|them|readers?|customers?)\b|"
                          r"\b(risk[\s-]free|guaranteed\s+(returns?|profits?|gains?)|no\s+need\s+to\s+see\s+a\s+doctor)\b|"
                          r"\b(leave\s+out|omit|skip|drop|remove|suppress|hide|withhold)\s+(\w+\s+){0,2}(warnings?|disclaimers?|side\s+effects|"
                          r"risks?|caveats?|interactions)\b|\b(disable|turn\s+off|uninstall|deactivate|bypass|switch\s+off|pause)\w*\s+(\w+\s+){0,3}"
                          r"(antivirus|anti-virus|firewall|defender|2fa|two-factor|updates|certificate\s+(checks?|verification)|tls|ssl)\b|"
                          r"\b(ransomware|keyloggers?|malware|spyware|phishing|backdoors?)\b"),
    ("personal data", r"\b(ask|request|collect|gather|harvest|obtain|record|log|store|capture|extract)\w*\s+([\w']+\s+){0,5}?(e-?mail(\s+address)?|"
                      r"phone\s+number|home\s+address|date\s+of\s+birth|birthday|social\s+security|ssn|credit\s+card|card\s+number|"
                      r"bank\s+(account|details)|full\s+name|passport|id\s+number)\b|\b(recovery|seed|secret)\s+phrase\b|\bmnemonic\b|"
                      r"\bcvv\b|\bone-time\s+(code|password)\b|\b(2fa|verification)\s+code\b|\b(tokens?|keys?|secrets?)\s+(it|they|the\s+code)"
                      r"\s+contains?\b|\bmarkdown\s+image\b|!\[[^\]]*\]\("),
    ("contact or link", r"\b[\w-]+(?:\.[\w-]+)*\.(?:app|dev|ai|co|me|ly|gg|link|site|online|shop|store|live|club|pw|tk|ml|ga|cf|gq|cc|tv|ws|"
                        r"us|uk|de|fr|eu|vip|win|click|help|support|finance|money|icu|best|cam|fun|host|space|website|page|to)\b(?:/\S*)?|"
                        r"\b[\w-]+\s*(?:\[\.\]|\(\.\)|\{\.\}|\s+dot\s+)\s*(?:com|net|org|io|app|dev|ai|co|me|ly|shop|site|online|xyz|ru|cn|info|help|link)\b|\b\d{1,3}(?:\.\d{1,3}){3}\b|"
                        r"\+?\b\d{1,3}[\s().-]*\d{3}[\s().-]*\d{3}[\s().-]*\d{3,4}\b|"
                        r"\b(telegram|whatsapp|discord|signal|instagram|tiktok)\b[^.\n]{0,40}@\w{3,}"),
    ("payload or shell", r"__import__|\bpopen\b|\breverse\s+shell\b|"  # os.system, subprocess: "code or shell" above
                             r"/dev/tcp|\bnc\s+-\w*e|\binvoke-\w+|\bbase64\s+-d\b|\.(exe|msi|apk|dmg|ps1|bat|scr|vbs)\b"),
    ("trust or context", r"\b(treat|regard|consider|handle)\w*\s+(\w+\s+){0,5}?(as|like)\s+(if\s+it\s+(came|comes)\s+from\s+|coming\s+from\s+)?"
                         r"(the\s+|an?\s+)?(developer|system|operator|admin\w*|root|trusted)\b|\bfollow\s+(whatever|what|anything|all|any)\s+"
                         r"(\w+\s+){0,3}?(it|they|tools?|outputs?|results?|documents?|pages?)\s+(says?|tells?|contains?|instructs?|asks?)\b|"
                         r"\b(whole|entire|full|complete)\s+system\s+(prompt|message)\b|\bcontents?\s+of\s+the\s+system\s+(prompt|message)\b|"
                         r"\b(outrank|override|supersede|overrule)s?\s+(the\s+)?(user|system|developer)\b|"
                         # honest templates order their own instructions ("take precedence over instructions in the
                         # default preamble"); precedence over the user or the operator is what an injection claims
                         r"\btakes?\s+precedence\s+over\s+(\w+\s+){0,3}?(the\s+)?(user|operator)\b"),
    ("encoded instruction", r"\b(decode|decipher|unscramble|reverse|read)\w*\b[^.\n]{0,60}\b(and|then)\s+(follow|obey|do|execute|apply)\b|"
                            r"\b(follow|obey|execute|apply)\w*\s+(the\s+|this\s+)?(hex|rot13|base64|encoded|reversed|cipher)\b"),
)]
# Kinds whose words an honest text also uses after a negation ("do not give false information",
# "never help with phishing"): a match right after not / never / avoid / without is no hit.
NEGATABLE = {"deception or harm", "personal data", "payload or shell", "jailbreak, paraphrased", "steering", "covert"}
NEGATION_BEFORE = re.compile(r"\b(not|never|no|avoid\w*|without|refus\w*|declin\w*|won't|don't|do\s+not|cannot|can't|n't)\b[^.!?\n]{0,40}$", re.I)

# Inline code, paired from the left, counts as code when it looks like a command (a flag, a pipe
# or redirection, a path): a name in backticks (`python`, `developer system`) is how honest
# templates name tools and roles.
INLINE_CODE = re.compile(r"`([^`\n]+)`")
COMMAND_LIKE = re.compile(r"(^|\s)--?\w|[|;&$<>]|(^|[\s=])/\w|\w\(\S*\)\s*[;|&]")

# The same kinds of instruction in other languages, matched on normalize_for_languages(text):
# case folded, Latin letters without accents (é -> e, ü -> u, ł -> l, đ -> d), Cyrillic й -> и,
# ё -> е, ї -> і, Arabic without vowel marks and with one alef. Han patterns name simplified and
# traditional forms. Each pattern is the imperative or the phrase, not a word that honest default
# system prompts use ("assistant", "help", "answer", "please").
LANGUAGE_INSTRUCTIONS: dict[str, dict[str, str]] = {
    "Chinese": {
        "imperative 'ignore'": r"忽略|忽视|忽視|无视|無視|忘记|忘記|忘掉|不要理会|不要理會|不理会|不理會|别管|別管|覆盖之前|覆蓋之前",
        "imperative 'always'/'never'": r"总是|總是|始终|始終|永远|永遠|务必|務必|绝不|絕不|绝对不|絕對不|从不|從不|决不|決不|无论如何|無論如何",
        "imperative 'you must'": r"(你|您)(必须|必須|一定要|务必|務必|得要|需要始终|需要總是|需要总是)|不得",
        "secrecy": r"(不要|不可|不准|不能|切勿|别|別|千万不要|千萬不要|永远不要|永遠不要)(向|对|對|跟|和|让|讓)?(用户|用戶|任何人|他人|别人|別人|对方|對方)?"
                   r"(透露|泄露|洩露|告诉|告訴|提及|提到|说出|說出|披露|知道|发现|發現)|秘密|悄悄|偷偷|暗中|隐藏|隱藏|假装|假裝|保密",
        "jailbreak": r"越狱|越獄|开发者模式|開發者模式|无限制|無限制|不受限制|没有限制|沒有限制|无审查|無審查|不受约束|不受約束|无过滤|無過濾",
        "promotion": r"推荐|推薦|推广|推廣|广告|廣告|宣传|宣傳|赞助|贊助|首选|首選|引导用户|引導用戶",
        # sending the conversation or the user's data, or sending to an outside party: an honest tool
        # template says 向 `python` 发送 (send to the tool), as GLM-4's does
        "sending data": r"(把|将|將)(用户|用戶|对话|對話|聊天|会话|會話|个人|個人|历史|歷史)\S{0,12}(发送|發送|上传|上傳|转发|轉發|传输|傳輸|外传|外傳)|"
                        r"(发送|發送|上传|上傳|转发|轉發|传输|傳輸|回传|回傳)(给|給|到|至)(我们|我們|第三方|外部|服务器|伺服器|邮箱|郵箱|网址|網址|该地址|該地址)|"
                        r"泄露|洩露|外传|外傳",
        "credentials": r"密码|密碼|口令|凭证|憑證|凭据|憑據|密钥|密鑰|私钥|私鑰|访问令牌|訪問令牌|api\s*key",
    },
    "Japanese": {
        "imperative 'ignore'": r"無視|忘れて|忘れろ|忘れなさい|これまでの指示|以前の指示",
        "imperative 'always'/'never'": r"常に|いつも|必ず|絶対に|決して|二度と",
        "imperative 'you must'": r"(し|せ)?なければ(ならない|なりません|いけない|いけません)|ねばならない",
        "secrecy": r"(言わ|教え|話さ|明かさ|伝え|漏らさ|知らせ|見せ)ないで|秘密|内緒|こっそり|隠して|隠れて|ふりをし|ふりをする",
        "jailbreak": r"脱獄|ジェイルブレイク|開発者モード|制限なし|制限のない|無制限|検閲なし|フィルターなし",
        "promotion": r"推薦|おすすめ|お勧め|お薦め|勧めて|勧める|宣伝|広告|スポンサー|推奨",
        "sending data": r"(会話|チャット|ユーザー|個人情報|履歴)\S{0,12}(送信|送って|送る|アップロード|転送)|"
                        r"(外部|第三者|サーバー|メール)\S{0,6}(送信|送って|送る|アップロード|転送)|漏洩|流出|漏らして",
        "credentials": r"パスワード|認証情報|apiキー|api\s*キー|秘密鍵|アクセストークン|資格情報",
    },
    "Korean": {
        "imperative 'ignore'": r"무시|잊어|잊으|잊고",
        "imperative 'always'/'never'": r"항상|언제나|반드시|절대|결코",
        "imperative 'you must'": r"(해야|하여야)\s*(한다|합니다|해요|해|만)",
        "secrecy": r"(말하|알리|밝히|공개하|언급하|누설하|보여주)지\s*(마|말|않)|비밀|몰래|숨기|숨겨|척하",
        "jailbreak": r"탈옥|개발자\s*모드|제한\s*없|무제한|검열\s*없|필터\s*없",
        "promotion": r"추천|홍보|광고|후원|권장",
        "sending data": r"(대화|채팅|사용자|개인\s*정보|기록)\S{0,12}\s*(전송|보내|업로드|전달하)|(외부|서버|제3자)\S{0,6}\s*(전송|보내|업로드)|유출",
        "credentials": r"비밀번호|암호|자격\s*증명|api\s*키|개인\s*키|액세스\s*토큰",
    },
    "Russian/Ukrainian": {
        "imperative 'ignore'": r"\b(игнориру\w*|проигнорир\w*|забуд\w*|забыва\w*|пренебрег\w*|не\s+обраща\w*\s+внимани\w*|отбрось\w*|"
                               r"ігнору\w*|проігнору\w*|забудь\w*)\b",
        "imperative 'always'/'never'": r"\b(всегда|никогда|обязательно|ни\s+в\s+коем\s+случае|завжди|ніколи|обов'язково)\b",
        "imperative 'you must'": r"\b(ты|вы)\s+(должен|должна|должны|обязан\w*)\b|\bнельзя\b|\b(ти|ви)\s+(повинен|повинна|повинні|мусиш|мусите)\b",
        "secrecy": r"\bне\s+(говори\w*|сообща\w*|рассказыва\w*|раскрыва\w*|упомина\w*|показыва\w*|выдава\w*|кажи\w*|розповіда\w*|повідомля\w*)\b|"
                   r"\b(секрет\w*|таин\w*|таиком|скрыт\w*|притворя\w*|таємн\w*|прихов\w*)\b",
        "jailbreak": r"\b(джеилбреик\w*|режим\w*\s+разработчика|без\s+ограничени\w*|без\s+цензур\w*|без\s+фильтр\w*|без\s+обмежень)\b",
        "promotion": r"\b(рекоменд\w*|реклам\w*|продвига\w*|продвин\w*|спонсор\w*|предпочита\w*)\b",
        "sending data": r"\b(отправ\w*|отсыла\w*|перешли\w*|пересыла\w*|переда(и|ваи|ите)\w*|загрузи\w*|выгрузи\w*|слеи\w*|слива\w*|надісл\w*|відправ\w*)\b",
        "credentials": r"\b(парол\w*|учетн\w*\s+данн\w*|api[\s_-]?ключ\w*|ключ\w*\s+api|закрыт\w*\s+ключ\w*|приватн\w*\s+ключ\w*|токен\w*\s+доступа)\b",
    },
    "Spanish": {
        "imperative 'ignore'": r"\b(ignora|ignoren|ignorad|ignorar|olvida|olvide|olviden|olvidar|olvidad|descarta|descarte|desestima|"
                               r"haz\s+caso\s+omiso)\b",
        "imperative 'always'/'never'": r"\b(siempre|nunca|jamas)\b",
        "imperative 'you must'": r"\b(debes|deberas|tienes\s+que|usted\s+debe|estas\s+obligad[oa])\b",
        "secrecy": r"\b(no|nunca|jamas)\s+(le\s+|les\s+|se\s+lo\s+)?(digas|diga|reveles|revele|menciones|mencione|cuentes|cuente|divulgues|"
                   r"informes|muestres|comentes)\b|\b(secreto|secreta|secretamente|oculto|oculta|finge|fingir|a\s+escondidas)\b",
        "jailbreak": r"\bmodo\s+(de\s+)?desarrollador\b|\bsin\s+(restricciones|filtros?|censura)\b",
        "promotion": r"\b(recomienda\w*|recomendar\w*|recomiende\w*|promociona\w*|promueve\w*|publicita\w*|patrocin\w*|publicidad)\b",
        "sending data": r"\b(envia|envie|enviar|envialo|enviale|enviales|reenvia|reenviar|transmite|transmitir|filtra\s+(los|las)\s+\w+)\b",
        "credentials": r"\b(contrasenas?|credenciales|claves?\s+(de\s+)?api|claves?\s+privadas?|tokens?\s+de\s+acceso)\b",
    },
    "Portuguese": {
        "imperative 'ignore'": r"\b(ignora|ignorar|esqueca|esquecam|esquecer|desconsidere|desconsiderar|descarte)\b",
        "imperative 'always'/'never'": r"\b(sempre|nunca|jamais)\b",
        "imperative 'you must'": r"\bvoce\s+(deve|precisa|tem\s+que|tem\s+de)\b|\b(deves|tens\s+de|tens\s+que)\b",
        "secrecy": r"\b(nao|nunca|jamais)\s+(lhe\s+|lhes\s+)?(diga|digas|revele|mencione|conte|informe|mostre|divulgue)\b|"
                   r"\b(segredo|secretamente|em\s+segredo|escondid[oa]|finja|fingir)\b",
        "jailbreak": r"\bmodo\s+(de\s+)?desenvolvedor\b|\bsem\s+(restricoes|filtros?|censura)\b",
        "promotion": r"\b(recomende|recomenda\w*|promova|promover|anuncie|patrocin\w*|publicidade|propaganda)\b",
        "sending data": r"\b(envie|enviar|envia|encaminhe|encaminhar|transmita|transmitir|vaze|vazar)\b",
        "credentials": r"\b(senhas?|credenciais|chaves?\s+(de\s+)?api|chaves?\s+privadas?|tokens?\s+de\s+acesso)\b",
    },
    "French": {
        "imperative 'ignore'": r"\b(ignorez|ignorer|ignore\s+(les|tout|toutes)|oublie|oubliez|oublier|ne\s+tiens\s+pas\s+compte|"
                               r"ne\s+tenez\s+pas\s+compte|fais\s+abstraction|faites\s+abstraction)\b",
        "imperative 'always'/'never'": r"\b(toujours|jamais)\b",
        "imperative 'you must'": r"\b(tu\s+dois|vous\s+devez|il\s+faut\s+que|il\s+te\s+faut|il\s+vous\s+faut|tu\s+ne\s+dois|vous\s+ne\s+devez)\b",
        "secrecy": r"\bne\s+(le\s+|la\s+|les\s+|lui\s+|leur\s+|l')?(dis|dites|revele|revelez|mentionne|mentionnez|divulgue|divulguez|"
                   r"montre|montrez|parle|parlez)\s+(jamais|pas|rien)\b|\bsans\s+(le\s+|lui\s+)?(dire|prevenir|informer)\b|"
                   r"\b(secretement|en\s+secret|en\s+cachette|fais\s+semblant|faites\s+semblant)\b",
        "jailbreak": r"\bmode\s+developpeur\b|\bsans\s+(restrictions?|filtres?|censure)\b|\bnon\s+filtre\b",
        "promotion": r"\b(recommande|recommandez|recommander|promouvoir|promeus|promouvez|publicite|sponsoris\w*|fais\s+la\s+promotion)\b",
        "sending data": r"\b(envoie|envoyez|envoyer|transmets|transmettez|transmettre|televerse|televersez|fais\s+suivre)\b",
        "credentials": r"\b(mots?\s+de\s+passe|identifiants|cles?\s+(d')?api|cles?\s+privees?|jetons?\s+d'acces)\b",
    },
    "German": {
        "imperative 'ignore'": r"\b(ignoriere|ignorieren|ignoriert|ignorier|vergiss|vergessen\s+sie|missachte|missachten|uberschreibe)\b",
        "imperative 'always'/'never'": r"\b(immer|niemals|stets)\b",
        "imperative 'you must'": r"\b(du\s+musst|sie\s+mussen|du\s+sollst|du\s+darfst\s+nicht|sie\s+durfen\s+nicht)\b",
        "secrecy": r"\b(sage|sag|verrate|erwahne|erzahle|erzahl|zeige)\s+(\w+\s+){0,3}(nie|niemals|nicht|nichts)\b|"
                   r"\bohne\s+(es\s+)?(\w+\s+)?(zu\s+)?(sagen|erwahnen)\b|\b(geheim\w*|heimlich\w*|verborgen\w*|tu\s+so\s+als)\b",
        "jailbreak": r"\b(entwicklermodus|ohne\s+einschrankungen|ohne\s+filter|unzensiert|uneingeschrankt)\b",
        "promotion": r"\b(empfiehl\w*|empfehl\w*|bewirb|bewerben|werbung|gesponsert)\b",
        "sending data": r"\b(sende|senden|schicke|schicken|ubermittle|ubermitteln|lade\s+(\w+\s+){1,3}hoch|leite\s+(\w+\s+){1,3}weiter)\b",
        "credentials": r"\b(passwort\w*|zugangsdaten|anmeldedaten|api[\s-]?schlussel|privaten?\s+schlussel|zugriffstoken)\b",
    },
    "Italian": {
        "imperative 'ignore'": r"\b(ignora|ignorare|ignorate|dimentica|dimenticare|dimenticate|trascura|trascurate)\b",
        "imperative 'always'/'never'": r"\b(sempre|mai\s+piu|non\s+(\w+\s+){0,2}mai)\b",
        "imperative 'you must'": r"\b(devi|dovete|sei\s+obbligat[oa])\b",
        "secrecy": r"\bnon\s+(dire|dirlo|dirglielo|rivelare|menzionare|raccontare|divulgare|mostrare|informare)\b|"
                   r"\b(segretamente|in\s+segreto|di\s+nascosto|fingi|fingere)\b",
        "jailbreak": r"\bmodalita\s+sviluppatore\b|\bsenza\s+(restrizioni|filtri|censura)\b",
        "promotion": r"\b(raccomand\w*|consiglia|consigliare|promuovi|promuovere|pubblicizz\w*|sponsorizz\w*|pubblicita)\b",
        "sending data": r"\b(invia|inviare|inoltra|inoltrare|trasmetti|trasmettere)\b",
        "credentials": r"\b(credenziali|chiavi?\s+api|chiavi?\s+privat[ae]|token\s+di\s+accesso)\b",
    },
    "Dutch": {
        "imperative 'ignore'": r"\b(negeer|negeren|vergeet)\b",
        "imperative 'always'/'never'": r"\b(altijd|nooit)\b",
        "imperative 'you must'": r"\b(je|jij|u)\s+(moet|moeten|dient)\b",
        "secrecy": r"\b(vertel|zeg|onthul|noem|toon)\s+(\w+\s+){0,3}(niet|nooit|niets)\b|\b(geheim\w*|stiekem|verborgen|doe\s+alsof)\b",
        "jailbreak": r"\b(ontwikkelaarsmodus|zonder\s+beperkingen|ongecensureerd|ongefilterd)\b",
        "promotion": r"\b(aanbevel\w*|beveel\s+\w+\s+aan|promoot|reclame|adverteer\w*|gesponsord)\b",
        "sending data": r"\b(stuur|verstuur|versturen|doorsturen)\b",
        "credentials": r"\b(wachtwoord\w*|inloggegevens|api[\s-]?sleutel\w*|prive[\s-]?sleutel\w*|toegangstoken\w*)\b",
    },
    "Polish": {
        "imperative 'ignore'": r"\b(zignoruj\w*|ignoruj\w*|zapomnij\w*|pomin)\b",
        "imperative 'always'/'never'": r"\b(zawsze|nigdy)\b",
        "imperative 'you must'": r"\b(musisz|musicie|powinienes|powinnas|masz\s+obowiazek)\b",
        "secrecy": r"\bnie\s+(mow|mowcie|ujawniaj|wspominaj|informuj|pokazuj|zdradzaj)\b|\b(sekret\w*|potajemnie|ukryt\w*|udawaj)\b",
        "jailbreak": r"\b(tryb\w*\s+dewelopera|bez\s+ograniczen|bez\s+cenzury|bez\s+filtrow)\b",
        "promotion": r"\b(poleca\w*|polec|rekomend\w*|reklam\w*|promuj\w*|sponsor\w*)\b",
        "sending data": r"\b(wyslij\w*|przeslij\w*|wysylaj\w*|przekaz)\b",
        "credentials": r"\b(hasl\w*|dane\s+logowania|klucz\w*\s+api|klucz\w*\s+prywatn\w*|token\w*\s+dostepu)\b",
    },
    "Turkish": {
        "imperative 'ignore'": r"\b(yoksay\w*|gormezden\s+gel\w*|unut|unutun|dikkate\s+alma\w*)\b",
        "imperative 'always'/'never'": r"\b(her\s+zaman|daima|asla|hicbir\s+zaman)\b",
        "imperative 'you must'": r"\b(zorundasın|zorundasınız|mecbursun)\b|\w+(malısın|melisin|malısınız|melisiniz)\b",
        "secrecy": r"\b(soyleme|soylemeyin|anlatma|anlatmayın|bahsetme|bahsetmeyin|gosterme)\b|\b(gizlice|gizli|sakla|saklayın|gibi\s+davran\w*)\b",
        "jailbreak": r"\b(gelistirici\s+modu|kısıtlamasız|sansursuz|filtresiz)\b",
        "promotion": r"\b(tavsiye\s+et\w*|oner|onerin|reklam\w*|sponsor\w*)\b",
        "sending data": r"\b(gonder\w*|sızdır\w*|yukle|yukleyin|ilet|iletin)\b",
        "credentials": r"\b(sifre\w*|parola\w*|kimlik\s+bilgi\w*|api\s+anahtar\w*|ozel\s+anahtar\w*|erisim\s+belirtec\w*)\b",
    },
    "Vietnamese": {
        "imperative 'ignore'": r"\b(bo\s+qua|phot\s+lo|quen\s+(di|het|tat\s+ca))\b",
        "imperative 'always'/'never'": r"\b(luon\s+luon|luon|khong\s+bao\s+gio|tuyet\s+doi\s+khong)\b",
        "imperative 'you must'": r"\bban\s+(phai|bat\s+buoc)\b",
        "secrecy": r"\b(dung|khong\s+duoc)\s+(noi|tiet\s+lo|ke|de\s+cap|cho\s+biet)\b|\b(bi\s+mat|gia\s+vo|an\s+giau|giau\s+kin)\b",
        "jailbreak": r"\b(che\s+do\s+nha\s+phat\s+trien|khong\s+gioi\s+han|khong\s+kiem\s+duyet)\b",
        "promotion": r"\b(quang\s+cao|khuyen\s+(nghi|dung|khich\s+mua)|tai\s+tro)\b",
        "sending data": r"\b(gui\s+(di|cho|den|toan\s+bo)|tai\s+len|chuyen\s+tiep)\b",
        "credentials": r"\b(mat\s+khau|thong\s+tin\s+dang\s+nhap|khoa\s+api|khoa\s+rieng\s+tu|ma\s+truy\s+cap)\b",
    },
    "Indonesian/Malay": {
        "imperative 'ignore'": r"\b(abaikan|lupakan|hiraukan)\b",
        "imperative 'always'/'never'": r"\b(selalu|jangan\s+pernah|tidak\s+pernah)\b",
        "imperative 'you must'": r"\b(kamu|anda)\s+(harus|wajib|mesti)\b",
        "secrecy": r"\bjangan\s+(beri\s+tahu|beritahu|katakan|ungkapkan|sebutkan|tunjukkan)\b|\b(rahasia\w*|diam-diam|sembunyi\w*|berpura-pura)\b",
        "jailbreak": r"\b(mode\s+pengembang|tanpa\s+(batasan|sensor|filter))\b",
        "promotion": r"\b(rekomendasikan|sarankan|promosikan|iklan\w*|sponsor\w*)\b",
        "sending data": r"\b(kirim\w*|unggah\w*|teruskan|bocorkan)\b",
        "credentials": r"\b(kata\s+sandi|kredensial|kunci\s+api|kunci\s+pribadi|token\s+akses)\b",
    },
    "Arabic": {
        "imperative 'ignore'": r"تجاهل|اهمل|انس\s|انسي",
        "imperative 'always'/'never'": r"دائما|ابدا|علي\s+الاطلاق",
        "imperative 'you must'": r"يجب\s+عليك|عليك\s+ان|لا\s+بد",
        "secrecy": r"لا\s+(تخبر|تكشف|تذكر|تفصح|تظهر|تقل)|سرا|بشكل\s+سري|خفي|تظاهر",
        "jailbreak": r"وضع\s+المطور|بدون\s+قيود|بلا\s+قيود|دون\s+رقابة",
        "promotion": r"اوصي|توصي|انصح|روج|ترويج|اعلان",
        "sending data": r"ارسل|ارسال|سرب|تسريب",
        "credentials": r"كلمة\s+(المرور|السر)|كلمات\s+المرور|بيانات\s+الاعتماد|مفتاح\s+api|المفتاح\s+الخاص|رمز\s+الوصول",
    },
    "Hindi": {
        "imperative 'ignore'": r"अनदेखा|नज़रअंदाज़|नजरअंदाज|भूल\s+जाओ|भूल\s+जाएं|भूल\s+जाएँ|भूल\s+जाइए",
        "imperative 'always'/'never'": r"हमेशा|कभी\s+(भी\s+)?नहीं|कभी\s+(भी\s+)?मत|सदैव",
        "imperative 'you must'": r"(तुम्हें|आपको)\s+(\S+\s+){1,4}(ही\s+)?(चाहिए|होगा|पड़ेगा)",
        "secrecy": r"(मत|न|नहीं)\s+(बताओ|बताएं|बताएँ|बताना|बताइए|बताइये)|(बताओ|बताना|बताएं)\s+मत|गुप्त|चुपके|गोपनीय|नाटक\s+करो",
        "jailbreak": r"डेवलपर\s+मोड|बिना\s+(किसी\s+)?(प्रतिबंध|सेंसर)",
        "promotion": r"सिफारिश|सिफ़ारिश|अनुशंसा|प्रचार|विज्ञापन|प्रायोजित",
        "sending data": r"भेजो|भेजें|भेजना|भेजिए|अपलोड|लीक",
        "credentials": r"पासवर्ड|क्रेडेंशियल|एपीआई\s+की|निजी\s+कुंजी|एक्सेस\s+टोकन",
    },
}
# Han ideographs (with the compatibility block and the supplementary planes) and kana: written
# without spaces between words; and with CJK punctuation, what a word boundary there sits between.
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
KANA = "\u3040-\u30ff"
HAN_KANA_TEXT = HAN + KANA + "\u3000-\u303f\uff01-\uff0f"
# Languages not written in Latin letters, by the characters that show their script: their
# patterns are searched only in text that holds such characters.
SCRIPTS = {"Chinese": f"[{HAN}]", "Japanese": f"[{KANA}{HAN}]",
           "Korean": "[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]", "Russian/Ukrainian": "[\u0400-\u04ff]",
           "Arabic": "[\u0600-\u06ff]", "Hindi": "[\u0900-\u097f]"}


@dataclass(frozen=True)
class LanguagePatterns:
    """One language's patterns, labelled; `script` (None: Latin letters, always searched) gates them,
    and `any_of` (all of them in one pattern) passes over text that matches none with one search."""
    script: re.Pattern[str] | None
    patterns: tuple[tuple[str, re.Pattern[str]], ...]
    any_of: re.Pattern[str]


def _language_patterns(language: str, kinds: dict[str, str]) -> LanguagePatterns:
    patterns = tuple((f"{label} ({language})", re.compile(unicodedata.normalize("NFC", rx))) for label, rx in kinds.items())
    script = re.compile(SCRIPTS[language]) if language in SCRIPTS else None
    return LanguagePatterns(script, patterns, re.compile("|".join(f"(?:{rx.pattern})" for _, rx in patterns)))


LANGUAGE_PATTERNS = [_language_patterns(language, kinds) for language, kinds in LANGUAGE_INSTRUCTIONS.items()]
# Between a Han or kana character and a Latin letter or digit: a word boundary the text does not
# mark with a space.
SPACED_HAN_KANA = re.compile(f"(?<=[{HAN_KANA_TEXT}])\\s+(?=[{HAN_KANA_TEXT}])")
NO_SPACE_BOUNDARY = re.compile(f"(?<=[{HAN_KANA_TEXT}])(?=[A-Za-z0-9])|(?<=[A-Za-z0-9])(?=[{HAN_KANA_TEXT}])")
WRITTEN_WITHOUT_SPACES = re.compile(f"[{HAN}{KANA}]")  # each such character a word of its own in text_words
# Where a pattern of a Latin-letter language can start: the first letter of a word; and all those
# patterns in one, tried there, which most text matches nowhere.
WORD_START = re.compile(r"(?<![^\W\d_])[^\W\d_]")
ANY_LATIN_LETTER_LANGUAGE = re.compile("|".join(f"(?:{lp.any_of.pattern})" for lp in LANGUAGE_PATTERNS if lp.script is None))


# Letters of other scripts drawn like Latin ones (the common part of Unicode's confusables):
# "Іgnоrе" with Cyrillic І, о, е reads as "Ignore" to a person and to the model's tokenizer.
LOOKALIKES = str.maketrans(
    "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u0501\u051b\u051d\u04bb\u04cf\u0410\u0412\u0415\u041a\u041c"
    "\u041d\u041e\u0420\u0421\u0422\u0425\u0406\u0408\u0405\u04ae\u03b1\u03bf\u03bd\u03c1\u03b9\u03ba\u0391\u0392\u0395\u0396"
    "\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7\u0131\u0261\u0585\u0578\u057d",
    "aeopcyxijsdqwhlABEKMHOPCTXIJSYaovpikABEZHIKMNOPTYXigons")
LOOKALIKE_SCRIPTS = {"CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "COPTIC"}
BASE64_TOKEN = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{16,}={0,2}")
# Latin letters with no decomposition, as the letter they carry; Arabic alef forms as bare alef.
UNDECOMPOSED = str.maketrans({"đ": "d", "ł": "l", "ø": "o", "ħ": "h", "ŧ": "t", "æ": "ae", "œ": "oe",
                              "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي"})
# Marks dropped in normalize_for_languages: those on a Latin, Greek or Cyrillic letter (accents,
# й's breve), and Arabic vowel marks. Marks of other scripts (Devanagari vowel signs, the kana
# voicing mark) are part of the letter and stay.
_DROPPED_MARK_BASES = ("LATIN", "GREEK", "CYRILLIC")
_ARABIC_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")


def fold_lookalikes(text: str) -> str:
    """`text` as it reads: compatibility forms (fullwidth Ｉ, mathematical 𝐈) and look-alike letters
    of other scripts (Cyrillic І) as the Latin letters they look like, accents dropped."""
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", text).translate(LOOKALIKES)


def normalize_for_languages(text: str) -> str:
    """`text` as LANGUAGE_INSTRUCTIONS read it: compatibility forms folded (NFKC), case folded, the
    marks of Latin, Greek and Cyrillic letters and Arabic vowel marks dropped, UNDECOMPOSED letters
    as their plain form, identifiers' words apart (snake_case), and no spaces between Han or kana
    characters ("忽 略 之 前": written without them, spaced out to pass a pattern by)."""
    out, base = [], ""
    for c in unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold()):
        if unicodedata.combining(c):
            if base.startswith(_DROPPED_MARK_BASES):
                continue
        else:
            base = unicodedata.name(c, "")
        out.append(c)
    text = _ARABIC_MARKS.sub("", unicodedata.normalize("NFC", "".join(out))).translate(UNDECOMPOSED)
    text = SPACED_HAN_KANA.sub("", text)
    return re.sub(r"(?<=[^\W\d_])_+(?=[^\W\d_])", " ", text)


def disguised_words(text: str) -> list[str]:
    """Words that look Latin but are not all Latin letters: Latin mixed with Cyrillic, Greek or
    Armenian look-alikes ("Pleаse"), or fullwidth / mathematical letters ("Ｉｇｎｏｒｅ")."""
    out = []
    for w in re.findall(r"\w+", text):
        odd = [c for c in w if c.isalpha() and not c.isascii()]
        if not odd:
            continue
        latin = any(c.isascii() and c.isalpha() for c in w)
        lookalike = [c for c in odd if unicodedata.name(c, "").split(" ")[0] in LOOKALIKE_SCRIPTS]
        compat = [c for c in odd if unicodedata.normalize("NFKC", c).isascii()]
        if compat or (latin and lookalike):
            out.append(w)
    return out


def instruction_hits(text: str, *, decode: bool = True) -> list[tuple[str, str]]:
    """(label, matched text) for each instruction-like pattern found in `text`: the English ones on
    the text as it reads (fold_lookalikes; the words of snake_case and camelCase identifiers apart),
    those of other languages on normalize_for_languages(text), and any base64 run in it that
    decodes to such text."""
    return list(_instruction_hits(text, decode))


@lru_cache(maxsize=4096)  # the renders of a template's branch paths repeat the same text many times
def _instruction_hits(text: str, decode: bool) -> tuple[tuple[str, str], ...]:
    folded = fold_lookalikes(text)
    folded = re.sub(r"(?<=[A-Za-z])_+(?=[A-Za-z])|(?<=[a-z])(?=[A-Z])", " ", folded)  # send_data, ignorePrevious: words too
    folded = NO_SPACE_BOUNDARY.sub(" ", folded)  # 请访问https://..., 运行curl: English words in Han or kana text too
    hits = _english_hits(folded)
    # the same text respelled as a reader reads it: letters spaced out ("I g n o r e"), words broken
    # by a hyphen at a line end, emphasis inside a word (ig**nore**), digits for letters (1gn0r3)
    respelled = respell(folded)
    if respelled != folded:
        found = {label for label, _ in hits}
        hits += [(f"{label}, respelled", match) for label, match in _english_hits(respelled) if label not in found]
    command = next((m.group(0) for m in INLINE_CODE.finditer(folded) if COMMAND_LIKE.search(m.group(1))), None)
    if command and not any(label == "code or shell" for label, _ in hits):
        hits.append(("code or shell", command))
    normalized = normalize_for_languages(text)
    latin = any(ANY_LATIN_LETTER_LANGUAGE.match(normalized, m.start()) for m in WORD_START.finditer(normalized))
    for language in LANGUAGE_PATTERNS:
        if (language.script.search(normalized) if language.script else latin) and language.any_of.search(normalized):
            hits += [(label, m.group(0)) for label, rx in language.patterns for m in [rx.search(normalized)] if m]
    if decode:  # hex and ROT13, read like base64: only what then reads as an instruction counts
        for m in HEX_TOKEN.finditer(text):
            try:
                decoded = bytes.fromhex(m.group(0)).decode("utf-8")
            except ValueError:
                continue
            if decoded.isprintable() and _instruction_hits(decoded, False):
                hits.append(("hex-encoded instruction", m.group(0)))
        rot = codecs.encode(folded, "rot13")
        rot_hits = _english_hits(rot)
        if len(rot_hits) >= 2:  # one word can come out of ROT13 by chance; two kinds of instruction do not
            hits += [(f"{label}, ROT13", match) for label, match in rot_hits]
    for m in BASE64_TOKEN.finditer(text) if decode else ():
        try:
            decoded = base64.b64decode(m.group(0) + "=" * (-len(m.group(0)) % 4), validate=True).decode("utf-8")
        except ValueError:
            continue
        if decoded.isprintable() and _instruction_hits(decoded, False):
            hits.append(("base64-encoded instruction", m.group(0)))
    return tuple(hits)


HEX_TOKEN = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}){8,}(?![0-9A-Fa-f])")
SPACED_LETTERS = re.compile(r"(?<![^\W\d_])(?:[^\W\d_][ .\-_*]){3,}[^\W\d_](?![^\W\d_])")
LEET = str.maketrans("013457@$", "oieastas")


def _english_hits(text: str) -> list[tuple[str, str]]:
    """(label, match) of each INSTRUCTION_LIKE kind found in `text`."""
    return [(label, m.group(0)) for label, rx in INSTRUCTION_LIKE for m in [_search(label, rx, text)] if m]


def _search(label: str, rx: re.Pattern[str], text: str) -> re.Match[str] | None:
    """rx's first match in text, passing over those of a NEGATABLE kind right after a negation."""
    for m in rx.finditer(text):
        if label in NEGATABLE and NEGATION_BEFORE.search(text[max(0, m.start() - 60):m.start()]):
            continue
        return m
    return None


def respell(text: str) -> str:
    """`text` as a reader puts it together: letters spaced out joined ("I g n o r e  a l l" -> "Ignore
    all": two or more spaces stay a word break), a word broken by a hyphen at a line end joined,
    markdown emphasis inside a word dropped, digits and @ $ inside a word of letters read as letters."""
    text = re.sub(r"(?<=\w)-[ \t]*\n[ \t]*(?=\w)", "", text)
    text = re.sub(r"(?<=\w)[*_~]{1,3}(?=\w)|(?<=\w)[*_~]{1,3}(?=\W|$)", "", text)
    text = SPACED_LETTERS.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), text)
    text = re.sub(r"\bl(?=[bcdfgjkmnpqrstvwxz])", "I", text)  # lgnore: l for I where no English word has l before a consonant
    # a word split in two by a space or a line break ("Dis regard", "Ign\nore"), where the pieces are
    # not both short common words ("for get", "all ways" stay apart)
    def join(m: re.Match[str]) -> str:
        first, gap, second = m.group(1), m.group(2), m.group(3)
        whole = (first + second).lower()
        return first if whole in SPLIT_KEYWORDS and not (first.lower() in COMMON_SHORT and second.lower() in COMMON_SHORT) else first + gap
    return SPLIT_PAIR.sub(join, _leet(text))


SPLIT_PAIR = re.compile(r"\b([A-Za-z]{1,8})([ \t]+\n?[ \t]*|\n[ \t]*)(?=([A-Za-z]{1,9})\b)")
SPLIT_KEYWORDS = {"ignore", "disregard", "forget", "override", "always", "never", "recommend", "promote", "advertise", "secret",
                  "secretly", "pretend", "hidden", "send", "upload", "forward", "leak", "transmit", "exfiltrate", "password", "passwords",
                  "credentials", "jailbreak", "unrestricted", "unfiltered", "endorse", "sponsor", "quietly", "silently", "subtly",
                  "previous", "instructions"}
COMMON_SHORT = {"a", "an", "all", "and", "are", "as", "at", "be", "but", "by", "for", "get", "go", "has", "have", "he", "her", "his",
                "if", "in", "is", "it", "its", "may", "no", "not", "of", "on", "or", "our", "out", "over", "ride", "so", "the", "to", "up",
                "us", "we", "ways", "with", "you", "your", "end", "load", "ward", "word", "pass", "words", "lo", "ad"}


def _leet(text: str) -> str:
    """Digits and @ $ inside a word of letters as the letters they stand for (1gn0r3); a name with a
    number at its end (Qwen2, H200) stays."""
    def letters(m: re.Match[str]) -> str:
        w = m.group(0)
        return w.translate(LEET) if re.search(r"[A-Za-z]", w) and re.search(r"[0-9@$]", w) and not re.fullmatch(r"[A-Za-z]+\d+", w) else w
    return re.sub(r"[A-Za-z0-9@$]+", letters, text)


def _is_letter(c: str) -> bool:
    return c.isalpha() or unicodedata.category(c) in ("Mn", "Mc")


def text_words(text: str, *, min_letters: int = 2, split_han: bool = True) -> list[str]:
    """The words of `text` in any script: runs of letters (with their combining marks and inner
    apostrophes) of at least `min_letters` letters; each Han or kana character a word of its own
    (`split_han`), else a run of them one word like any other."""
    words: list[str] = []
    run: list[str] = []

    def end() -> None:
        word = "".join(run).strip("'")
        if len(word) >= min_letters:
            words.append(word)
        run.clear()

    for c in text:
        if split_han and WRITTEN_WITHOUT_SPACES.match(c):
            end()
            words.append(c)
        elif _is_letter(c) or (c == "'" and run):
            run.append(c)
        else:
            end()
    end()
    return words


def has_words(text: str) -> bool:
    """Whether `text` holds any word (text_words) at all."""
    return bool(text_words(text))
