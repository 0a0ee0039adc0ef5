import secrets
from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from communications.models import Channel, ContactIdentity, Conversation, Message
from crm.models import Contact, Order, Team


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    password = factory.django.Password("switchboard")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel

    kind = Channel.Kind.API
    name = factory.Sequence(lambda n: f"Channel {n}")
    secrets = factory.LazyFunction(lambda: {"inbound_token": secrets.token_urlsafe(24)})


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    name = factory.Faker("name")
    phone = factory.Sequence(lambda n: f"+4915{n:08d}")


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    contact = factory.SubFactory(ContactFactory)
    number = factory.Sequence(lambda n: f"SB-{n:06d}")
    title = factory.Faker("sentence", nb_words=3)
    amount = "49.90"
    ordered_at = factory.LazyFunction(timezone.now)


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation
        skip_postgeneration_save = True

    channel = factory.SubFactory(ChannelFactory)
    contact = factory.SubFactory(ContactFactory)
    external_id = factory.Sequence(lambda n: f"chat-{n}")
    last_message_at = factory.Sequence(lambda n: timezone.now() - timedelta(minutes=n))

    @factory.post_generation
    def identity(obj, create, extracted, **kwargs):
        if create:
            ContactIdentity.objects.get_or_create(
                channel=obj.channel, external_id=obj.external_id, defaults={"contact": obj.contact}
            )


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    channel = factory.SelfAttribute("conversation.channel")
    direction = Message.Direction.INBOUND
    status = Message.Status.RECEIVED
    content = factory.Faker("sentence")
    external_id = factory.Sequence(lambda n: f"ext-{n}")
    created_at = factory.LazyFunction(timezone.now)
